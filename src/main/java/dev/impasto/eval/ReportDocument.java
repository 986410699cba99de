package dev.impasto.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The evaluation report as a sequence of blocks (headings, paragraphs, tables, figures), built once from an
 * {@link EvalResult} and rendered by {@link HtmlReport} (self-contained page) and {@link MarkdownReport} (report.md,
 * for model cards and docs), so both always say the same.
 */
public record ReportDocument(String title, String subtitle, List<Block> blocks) {

    public sealed interface Block permits Heading, Text, Table, Figure, Bullets {}

    public record Heading(int level, String text) implements Block {}

    public record Text(String text) implements Block {}

    /** A table; {@code collapsed} tables are long listings a page may fold away. */
    public record Table(List<String> headers, List<List<Cell>> rows, boolean collapsed) implements Block {}

    public record Cell(String text, boolean best) {
        static Cell of(String t) {
            return new Cell(t, false);
        }
    }

    public record Figure(String file, String caption) implements Block {}

    public record Bullets(List<String> items) implements Block {}

    public static ReportDocument of(EvalResult r) {
        List<Block> b = new ArrayList<>();
        EvalSettings s = r.settings();
        List<EvalResult.SetResult> loraSets = r.sets().stream().filter(x -> "lora".equals(x.kind())).toList();
        Double best = loraSets.size() < 2 ? null : loraSets.stream().map(EvalResult.SetResult::styleScore).filter(x -> x != null).max(Double::compare).orElse(null);

        b.add(new Heading(2, "Summary"));
        b.add(new Text("Each set of pictures is compared with the training pictures, metric by metric, as distributions (Wasserstein-1). "
                + "Style gap closed = 1 − W1(LoRA, training) / W1(base, training), averaged over the metrics: 1 means the LoRA's pictures match "
                + "the training distribution, 0 means no closer than the base, negative means further. Distance is the mean W1 to training in "
                + "units of the training distribution's standard deviation (lower is closer)."
                + (r.kidFeatures() == null ? "" : " KID is the kernel distance between the set's and the training pictures' feature distributions ("
                + r.kidFeatures() + "; lower is closer, about 0 for matching distributions).")));
        List<String> h = new ArrayList<>(List.of("set", "pictures", "style gap closed", "distance (SD)"));
        if (r.kidFeatures() != null) h.add("KID");
        if (r.clipModel() != null) h.add("CLIP score");
        List<List<Cell>> rows = new ArrayList<>();
        for (EvalResult.SetResult x : r.sets()) {
            List<Cell> row = new ArrayList<>(List.of(Cell.of(x.name()), Cell.of(Integer.toString(x.count())),
                    new Cell(fmt(x.styleScore()), best != null && best.equals(x.styleScore())), Cell.of(fmt(x.distanceSd()))));
            if (r.kidFeatures() != null) row.add(Cell.of(x.kid() == null || "train".equals(x.kind()) ? "–" : fmt(x.kid().mean()) + " ± " + fmt(x.kid().std())));
            if (r.clipModel() != null) row.add(Cell.of(fmt(x.clipScore())));
            rows.add(row);
        }
        b.add(new Table(h, rows, false));

        if (!r.loras().isEmpty()) {
            b.add(new Heading(2, "LoRAs compared"));
            h = new ArrayList<>(List.of("LoRA"));
            h.addAll(r.comparedFields());
            h.addAll(List.of("final loss", "style gap closed", "distance (SD)"));
            if (r.kidFeatures() != null) h.add("KID");
            if (r.clipModel() != null) h.add("CLIP score");
            rows = new ArrayList<>();
            for (EvalResult.LoraInfo l : r.loras()) {
                EvalResult.SetResult x = loraSets.stream().filter(y -> l.name().equals(y.lora()) && y.scale() == 1.0).findFirst()
                        .orElse(loraSets.stream().filter(y -> l.name().equals(y.lora())).findFirst().orElse(null));
                List<Cell> row = new ArrayList<>(List.of(Cell.of(l.name())));
                for (String f : r.comparedFields()) row.add(Cell.of(l.config().get(f) == null ? "–" : l.config().get(f)));
                row.add(Cell.of(fmt(l.finalLoss())));
                row.add(new Cell(x == null ? "–" : fmt(x.styleScore()), x != null && best != null && best.equals(x.styleScore())));
                row.add(Cell.of(x == null ? "–" : fmt(x.distanceSd())));
                if (r.kidFeatures() != null) row.add(Cell.of(x == null || x.kid() == null ? "–" : fmt(x.kid().mean())));
                if (r.clipModel() != null) row.add(Cell.of(x == null ? "–" : fmt(x.clipScore())));
                rows.add(row);
            }
            b.add(new Table(h, rows, false));
        }

        b.add(new Heading(2, "Metric distributions"));
        b.add(new Text("Mean ± standard deviation per set."));
        b.add(metricTable(r, r.sets(), true));
        b.add(new Text("Wasserstein-1 distance to the training pictures (in brackets: the gap closed relative to the base)."));
        b.add(metricTable(r, r.sets(), false));
        for (EvalResult.Figure f : r.plots()) if (!f.file().equals(CLIP_PLOT)) b.add(new Figure(f.file(), f.caption()));

        if (r.clipModel() != null) {
            b.add(new Heading(2, "CLIP score"));
            b.add(new Text("Prompt adherence: 2.5 × max(cos(picture, prompt), 0) between the picture's and the prompt's embeddings with "
                    + r.clipModel() + " (Hessel et al. 2021; higher means the picture follows its prompt more closely; about 0.75–0.9 "
                    + "for a good picture of its prompt with ViT-L/14). A style LoRA may trade some of it for the style: compare each "
                    + "set with the base, which drew the same prompts and seeds."));
            b.add(clipTable(r.sets()));
            b.add(new Text("Mean CLIP score per prompt (over the seeds)."));
            b.add(clipByPrompt(r.sets(), s.prompts.stream().map(s::expand).toList()));
            for (EvalResult.Figure f : r.plots()) if (f.file().equals(CLIP_PLOT)) b.add(new Figure(f.file(), f.caption()));
        }

        b.add(new Heading(2, "Pictures"));
        b.add(new Text("The same prompts and seeds in every row."));
        for (EvalResult.Figure f : r.grids()) if (!f.file().contains("/transfer-")) b.add(new Figure(f.file(), f.caption()));

        b.add(new Heading(2, "Style transfer"));
        if (r.transferSets().isEmpty()) b.add(new Text("No transfer prompts were given (--transfer-prompt)."));
        else {
            b.add(new Text("Prompts of subjects outside the training genres: does the style carry over? The same metrics against the training "
                    + "pictures, with the gap closed relative to the base on these prompts."));
            b.add(new Bullets(s.transferPrompts.stream().map(s::expand).toList()));
            b.add(metricTable(r, r.transferSets(), true));
            b.add(metricTable(r, r.transferSets(), false));
            if (r.clipModel() != null) {
                b.add(new Text("CLIP score on the transfer prompts: does the subject survive the style?"));
                b.add(clipTable(r.transferSets()));
                b.add(clipByPrompt(r.transferSets(), s.transferPrompts.stream().map(s::expand).toList()));
            }
            for (EvalResult.Figure f : r.grids()) if (f.file().contains("/transfer-")) b.add(new Figure(f.file(), f.caption()));
        }

        b.add(new Heading(2, "Settings"));
        rows = new ArrayList<>();
        rows.add(kv("prompts", String.join(" | ", s.prompts.stream().map(s::expand).toList())));
        rows.add(kv("seeds", s.seeds.toString()));
        rows.add(kv("steps / guidance", s.steps + " / " + s.guidance));
        rows.add(kv("size", s.width + "×" + s.height + " (measured at shorter side " + r.analysisSize() + ")"));
        rows.add(kv("LoRA strengths", s.scales.toString()));
        rows.add(kv("training pictures", r.trainingImages()));
        if (!r.trainingGenres().isEmpty()) rows.add(kv("training genres", r.trainingGenres().toString()));
        rows.add(kv("KID features", r.kidFeatures() == null ? "none" : r.kidFeatures() + " (" + s.kidSubsets + " subsets of up to " + s.kidSubsetSize + ")"));
        rows.add(kv("CLIP model", r.clipModel() == null ? "none" : r.clipModel()));
        for (EvalResult.LoraInfo l : r.loras()) rows.add(kv("LoRA " + l.name(), l.file() + (l.run() == null ? "" : " (run " + l.run() + ")")));
        if (!s.command.isEmpty()) rows.add(kv("command", String.join(" ", s.command)));
        b.add(new Table(List.of("setting", "value"), rows, false));
        b.add(new Heading(3, "Metrics"));
        b.add(new Bullets(r.metrics().stream().map(m -> m.label() + " (" + m.key() + "): " + m.description()).toList()));
        if (!r.notes().isEmpty()) {
            b.add(new Heading(3, "Notes"));
            b.add(new Bullets(r.notes()));
        }

        h = new ArrayList<>(List.of("set", "prompt", "seed"));
        for (EvalResult.MetricInfo m : r.metrics()) h.add(m.key());
        if (r.clipModel() != null) h.add("CLIP");
        h.addAll(List.of("ms", "file"));
        rows = new ArrayList<>();
        for (EvalResult.ImageResult im : r.images()) {
            List<Cell> row = new ArrayList<>(List.of(Cell.of(im.set() + (im.transfer() ? " (transfer)" : "")), Cell.of(im.prompt()), Cell.of(Long.toString(im.seed()))));
            for (EvalResult.MetricInfo m : r.metrics()) row.add(Cell.of(fmt(im.metrics().get(m.key()))));
            if (r.clipModel() != null) row.add(Cell.of(fmt(im.clipScore())));
            row.add(Cell.of(Long.toString(im.millis())));
            row.add(Cell.of(im.file() == null ? "" : im.file()));
            rows.add(row);
        }
        b.add(new Heading(2, "Every picture (" + r.images().size() + ")"));
        b.add(new Table(h, rows, true));
        String sub = r.created() + " · model " + r.model() + " on " + r.backend() + " · " + fmt(r.seconds()) + " s · " + r.images().size() + " pictures generated";
        return new ReportDocument(r.title(), sub, b);
    }

    /** The CLIP score histogram, shown in the CLIP score section rather than with the pixel metrics. */
    static final String CLIP_PLOT = "plots/hist-clip-score.png";

    /** Per set: the CLIP score's distribution and its mean's difference from the base's. */
    private static Table clipTable(List<EvalResult.SetResult> sets) {
        Double base = sets.stream().filter(x -> "base".equals(x.kind())).map(EvalResult.SetResult::clipScore).findFirst().orElse(null);
        List<List<Cell>> rows = new ArrayList<>();
        for (EvalResult.SetResult x : sets) {
            if ("train".equals(x.kind())) continue;
            Distributions.Summary c = x.clipScoreSummary();
            rows.add(List.of(Cell.of(x.name()), Cell.of(c == null ? "–" : fmt(c.mean()) + " ± " + fmt(c.std())), Cell.of(c == null ? "–" : fmt(c.median())),
                    Cell.of(c == null ? "–" : fmt(c.p10()) + " – " + fmt(c.p90())),
                    Cell.of("base".equals(x.kind()) || base == null || x.clipScore() == null ? "–" : signed(x.clipScore() - base))));
        }
        return new Table(List.of("set", "CLIP score (mean ± SD)", "median", "10th – 90th percentile", "vs base"), rows, false);
    }

    /** Rows: prompts; columns: sets; cells: the mean CLIP score over the seeds. */
    private static Table clipByPrompt(List<EvalResult.SetResult> sets, List<String> prompts) {
        List<EvalResult.SetResult> shown = sets.stream().filter(x -> !"train".equals(x.kind())).toList();
        List<String> h = new ArrayList<>(List.of("prompt"));
        for (EvalResult.SetResult x : shown) h.add(x.name());
        List<List<Cell>> rows = new ArrayList<>();
        for (String p : new java.util.LinkedHashSet<>(prompts)) {
            List<Cell> row = new ArrayList<>(List.of(Cell.of(p)));
            for (EvalResult.SetResult x : shown) row.add(Cell.of(x.clipScoreByPrompt() == null ? "–" : fmt(x.clipScoreByPrompt().get(p))));
            rows.add(row);
        }
        return new Table(h, rows, false);
    }

    private static String signed(double v) {
        String f = fmt(v);
        return v > 0 && !f.equals("0") ? "+" + f : f;
    }

    private static List<Cell> kv(String k, String v) {
        return List.of(Cell.of(k), Cell.of(v));
    }

    private static Table metricTable(EvalResult r, List<EvalResult.SetResult> sets, boolean means) {
        List<String> h = new ArrayList<>(List.of("set"));
        for (EvalResult.MetricInfo m : r.metrics()) h.add(m.label());
        List<List<Cell>> rows = new ArrayList<>();
        for (EvalResult.SetResult s : sets) {
            if (!means && "train".equals(s.kind())) continue;
            List<Cell> row = new ArrayList<>(List.of(Cell.of(s.name())));
            for (EvalResult.MetricInfo m : r.metrics()) {
                if (means) {
                    Distributions.Summary su = s.summary().get(m.key());
                    row.add(Cell.of(fmt(su.mean()) + " ± " + fmt(su.std())));
                } else {
                    Double gap = s.gapClosed().get(m.key());
                    row.add(Cell.of(fmt(s.w1ToTraining().get(m.key())) + (gap == null ? "" : " (" + fmt(gap) + ")")));
                }
            }
            rows.add(row);
        }
        return new Table(h, rows, false);
    }

    /** Numbers as people read them: 3 decimals, scientific under 0.01, 0 for rounding noise. */
    public static String fmt(Double v) {
        if (v == null || !Double.isFinite(v)) return "–";
        double a = Math.abs(v);
        if (a < 1e-9) return "0";
        if (a >= 100) return String.format(Locale.ROOT, "%.1f", v);
        if (a >= 0.01) return String.format(Locale.ROOT, "%.3f", v);
        return String.format(Locale.ROOT, "%.2e", v);
    }
}
