package dev.impasto.encoders.cache;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Aspect-ratio buckets as kohya's trainers make them: sizes of about {@code resolution}^2 pixels whose sides are
 * multiples of {@code step} (16 for FLUX: 8x VAE downsampling times 2x2 patches), aspect at most {@code maxAspect}.
 * Each image goes to the bucket whose aspect ratio is nearest its own (in log ratio), is scaled to cover it and
 * cropped to it. With {@code noUpscale}, an image smaller than the target area keeps its own area instead.
 */
public final class Buckets {
    public record Size(int width, int height) {
        double logAspect() {
            return Math.log(width / (double) height);
        }

        @Override
        public String toString() {
            return width + "x" + height;
        }
    }

    private final int resolution, step;
    private final double maxAspect;
    private final boolean noUpscale;
    private final List<Size> sizes;

    public Buckets(int resolution, int step, double maxAspect, boolean noUpscale) {
        if (step < 1 || resolution < step) throw new IllegalArgumentException("resolution " + resolution + " must be at least the bucket step " + step);
        if (maxAspect < 1) throw new IllegalArgumentException("max aspect must be >= 1, got " + maxAspect);
        this.resolution = resolution;
        this.step = step;
        this.maxAspect = maxAspect;
        this.noUpscale = noUpscale;
        this.sizes = sizesFor((long) resolution * resolution);
    }

    private List<Size> sizesFor(long area) {
        List<Size> out = new ArrayList<>();
        int maxSide = (int) (Math.sqrt(area * maxAspect) / step) * step;
        for (int w = step; w <= Math.max(step, maxSide); w += step) {
            int h = (int) (area / w / step) * step;
            if (h < step) continue;
            if (Math.max(w / (double) h, h / (double) w) <= maxAspect + 1e-9) out.add(new Size(w, h));
        }
        if (out.isEmpty()) out.add(new Size(step, step));
        out.sort(Comparator.comparingDouble(Size::logAspect));
        return out;
    }

    public List<Size> sizes() {
        return List.copyOf(sizes);
    }

    public int step() {
        return step;
    }

    /** The bucket of an image of {@code w x h} pixels. */
    public Size of(int w, int h) {
        List<Size> candidates = sizes;
        if (noUpscale && (long) w * h < (long) resolution * resolution) {
            long area = (long) w * h;
            candidates = sizesFor(area).stream().filter(s -> s.width() <= w && s.height() <= h).toList();
            if (candidates.isEmpty()) candidates = List.of(new Size(Math.max(step, w / step * step), Math.max(step, h / step * step)));
        }
        double a = Math.log(w / (double) h);
        Size best = null;
        for (Size s : candidates)
            if (best == null || Math.abs(s.logAspect() - a) < Math.abs(best.logAspect() - a)) best = s;
        return best;
    }
}
