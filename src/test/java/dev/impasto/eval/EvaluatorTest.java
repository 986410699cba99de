package dev.impasto.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.api.ImageGenerator;
import java.awt.image.BufferedImage;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The evaluator's bookkeeping on a generator whose pictures are known exactly. */
class EvaluatorTest {
    static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    /** "Training pictures": what the fake LoRA paints at strength 1, on other seeds. */
    static TrainingImages paleTraining(FakeGenerator g) {
        List<TrainingImages.Item> items = new ArrayList<>();
        for (String p : List.of("red", "blue"))
            for (long s = 100; s < 108; s++)
                items.add(new TrainingImages.Item(g.generate(new ImageGenerator.Request(p, s, 1, 1, 64, 64, "pale", 1.0), null).image(), p, p + s));
        return new TrainingImages(items, "pale test pictures", new TreeMap<>(java.util.Map.of("colour", 16)), 0);
    }

    static EvalSettings settings() {
        EvalSettings s = new EvalSettings();
        s.title = "test <report>";
        s.prompts = new ArrayList<>(List.of("red", "blue"));
        s.transferPrompts = new ArrayList<>(List.of("grey"));
        s.seeds = new ArrayList<>(List.of(1L, 2L, 3L, 4L));
        s.steps = 3;
        s.width = 64;
        s.height = 64;
        s.scales = new ArrayList<>(List.of(0.5, 1.0));
        return s;
    }

    @Test
    void measuresBaseAndLoraAgainstTraining(@TempDir Path out) throws Exception {
        FakeGenerator g = new FakeGenerator();
        EvalLora pale = new EvalLora("pale", out.resolve("pale.safetensors"), null, null, null);
        EvalResult r = new Evaluator(g, settings(), List.of(pale), paleTraining(g), new PaletteTextureFeatures(), new KidAndClipTest.ColourClip(), out, QUIET).run();

        assertEquals(List.of("training", "base", "pale x0.5", "pale"), r.sets().stream().map(EvalResult.SetResult::name).toList());
        assertEquals(64, r.analysisSize());
        EvalResult.SetResult train = r.set("training", false), base = r.set("base", false), half = r.set("pale x0.5", false), full = r.set("pale", false);
        assertEquals(16, train.count());
        assertEquals(8, base.count());
        // near-black share of each picture is exactly its dark square's area
        double nb = 0;
        for (String p : List.of("red", "blue"))
            for (long s = 1; s <= 4; s++) nb += Math.pow(FakeGenerator.darkSide(s, 64), 2) / 4096.0 / 8;
        assertEquals(nb, base.summary().get("near_black").mean(), 1e-12);
        // saturation: red (220,30,30) -> 190/220 outside the dark square; the LoRA at strength 1 paints the training colours
        assertTrue(base.w1ToTraining().get("saturation") > 0.3, base.w1ToTraining().toString());
        assertTrue(full.gapClosed().get("saturation") > 0.9, full.gapClosed().toString());
        assertTrue(half.gapClosed().get("saturation") > 0.3 && half.gapClosed().get("saturation") < full.gapClosed().get("saturation"), half.gapClosed().toString());
        assertEquals(0.0, base.gapClosed().get("saturation"), 1e-12);
        assertNull(train.styleScore());
        assertTrue(full.styleScore() > half.styleScore(), full.styleScore() + " vs " + half.styleScore());
        assertTrue(full.distanceSd() < base.distanceSd());
        // W1 to the base is the distance moved: none for the base itself
        assertEquals(0.0, base.w1ToBase().get("colourfulness"), 1e-12);
        assertTrue(full.w1ToBase().get("colourfulness") > 10);
        // KID: the LoRA's pictures are closer to the training set than the base's
        assertTrue(full.kid().mean() < base.kid().mean() / 2, full.kid() + " vs " + base.kid());
        // CLIP score: paler pictures match the pure colour words less
        assertTrue(base.clipScore() > full.clipScore() && full.clipScore() > 1.5, base.clipScore() + " vs " + full.clipScore());
        // ... per prompt (mean over the four seeds) and as a distribution over the set's eight pictures
        assertEquals(List.of("red", "blue"), List.copyOf(full.clipScoreByPrompt().keySet()));
        assertEquals(full.clipScore(), (full.clipScoreByPrompt().get("red") + full.clipScoreByPrompt().get("blue")) / 2, 1e-12);
        assertEquals(8, full.clipScoreSummary().count());
        assertEquals(full.clipScore(), full.clipScoreSummary().mean(), 1e-12);
        assertNull(train.clipScore());
        assertNull(train.clipScoreSummary());

        // the style-transfer prompts: their own sets, pictures and grid
        assertEquals(List.of("base", "pale x0.5", "pale"), r.transferSets().stream().map(EvalResult.SetResult::name).toList());
        assertEquals(4, r.set("pale", true).count());
        assertEquals(3 * 3 * 4, r.images().size());
        assertEquals(12, r.images().stream().filter(EvalResult.ImageResult::transfer).count());

        // files: every picture, a grid per prompt (base + 2 strengths x 4 seeds of 64 px), histograms, bars, scale sweep
        for (EvalResult.ImageResult im : r.images()) assertTrue(Files.isRegularFile(out.resolve(im.file())), im.file());
        BufferedImage grid = ImageIO.read(out.resolve("grids/prompt-00-red.png").toFile());
        assertEquals(150 + 4 * 68 + 4, grid.getWidth());
        assertEquals(24 + 20 + 3 * 68 + 4, grid.getHeight());
        assertTrue(Files.isRegularFile(out.resolve("grids/transfer-00-grey.png")));
        assertTrue(Files.isRegularFile(out.resolve("grids/training.png")));
        assertEquals(5 + 2 + 1, r.plots().size()); // metric histograms, style score, scale sweep, CLIP score histogram
        for (EvalResult.Figure f : r.plots()) assertTrue(Files.size(out.resolve(f.file())) > 5000, f.file());

        // report.json round-trips and holds no NaN; report.html is self-contained and escaped
        r.writeJson(out.resolve("report.json"));
        String json = Files.readString(out.resolve("report.json"));
        assertFalse(json.contains("NaN") || json.contains("Infinity"));
        EvalResult back = EvalResult.readJson(out.resolve("report.json"));
        assertEquals(r.set("pale", false).styleScore(), back.set("pale", false).styleScore());
        assertEquals(List.of("red", "blue"), back.settings().prompts);
        String html = Files.readString(HtmlReport.write(r, out));
        Matcher m = Pattern.compile("src=\"data:image/png;base64,").matcher(html);
        int inlined = 0;
        while (m.find()) inlined++;
        assertEquals(r.plots().size() + r.grids().size(), inlined);
        assertFalse(html.contains("src=\"grids/") || html.contains("src=\"plots/"));
        assertTrue(html.contains("test &lt;report&gt;") && !html.contains("test <report>"));
        assertTrue(html.contains("colour-clip (test)"));
        assertTrue(html.contains("<h2>CLIP score</h2>") && html.contains("<th>vs base</th>") && html.contains("Mean CLIP score per prompt"), "CLIP section");
        assertTrue(html.contains("<td>red</td>"), "a row per prompt");
        String md = Files.readString(MarkdownReport.write(r, out));
        assertTrue(md.startsWith("# test &lt;report>\n"), md.substring(0, 40));
        assertTrue(md.contains("![") && md.contains("](grids/prompt-00-red.png)"), md);
        assertTrue(md.contains("| pale | 8 | **"), "the best LoRA set is bold: " + md);
        assertEquals(r.plots().size() + r.grids().size(), md.split("!\\[", -1).length - 1);
    }

    /** A CLIP that counts the pictures it embeds. */
    static final class CountingClip implements FeatureExtractor {
        final KidAndClipTest.ColourClip inner = new KidAndClipTest.ColourClip();
        int images;

        @Override
        public String name() {
            return "counting clip";
        }

        @Override
        public float[] image(BufferedImage image) {
            images++;
            return inner.image(image);
        }

        @Override
        public boolean hasText() {
            return true;
        }

        @Override
        public float[] text(String prompt) {
            return inner.text(prompt);
        }
    }

    @Test
    void oneClipForKidAndTheClipScoreEmbedsEachPictureOnce(@TempDir Path out) throws Exception {
        FakeGenerator g = new FakeGenerator();
        EvalSettings s = settings();
        s.transferPrompts = new ArrayList<>();
        s.scales = new ArrayList<>(List.of(1.0));
        s.saveImages = false;
        CountingClip clip = new CountingClip();
        EvalResult r = new Evaluator(g, s, List.of(new EvalLora("pale", out.resolve("x"), null, null, null)), paleTraining(g), clip, clip, out, QUIET).run();
        assertEquals(16 + 2 * 8, clip.images, "16 training pictures and 16 generated ones, each embedded once");
        assertEquals("counting clip", r.kidFeatures());
        assertEquals("counting clip", r.clipModel());
        assertNotNull(r.set("pale", false).kid());
        assertTrue(r.set("pale", false).kid().mean() < r.set("base", false).kid().mean());
    }

    @Test
    void refusesWhatItCannotCompare(@TempDir Path out) {
        FakeGenerator g = new FakeGenerator();
        TrainingImages t = paleTraining(g);
        EvalLora unknown = new EvalLora("sketchy", out.resolve("x"), null, null, null);
        var e = assertThrows(IllegalArgumentException.class, () -> new Evaluator(g, settings(), List.of(unknown), t, null, null, out, QUIET));
        assertTrue(e.getMessage().contains("does not offer LoRA \"sketchy\"") && e.getMessage().contains("[pale]"), e.getMessage());
        EvalSettings one = settings();
        one.prompts = new ArrayList<>(List.of("red"));
        one.seeds = new ArrayList<>(List.of(1L));
        one.width = 60;
        EvalLora pale = new EvalLora("pale", out.resolve("x"), null, null, null);
        e = assertThrows(IllegalArgumentException.class, () -> new Evaluator(g, one, List.of(pale), t, null, null, out, QUIET));
        assertTrue(e.getMessage().contains("at least 2 pictures") && e.getMessage().contains("multiples of 16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Evaluator(g, settings(), List.of(), t, null, null, out, QUIET));
        assertTrue(e.getMessage().contains("at least one LoRA"), e.getMessage());
    }

    @Test
    void withoutExtractorsThereIsNoKidOrClipScore(@TempDir Path out) throws Exception {
        FakeGenerator g = new FakeGenerator();
        EvalSettings s = settings();
        s.transferPrompts = new ArrayList<>();
        s.scales = new ArrayList<>(List.of(1.0));
        s.saveImages = false;
        EvalResult r = new Evaluator(g, s, List.of(new EvalLora("pale", out.resolve("x"), null, null, null)), paleTraining(g), null, null, out, QUIET).run();
        assertNull(r.set("pale", false).kid());
        assertNull(r.set("pale", false).clipScore());
        assertNull(r.images().getFirst().file());
        assertTrue(r.transferSets().isEmpty());
        assertFalse(Files.exists(out.resolve("images")));
        assertFalse(Files.exists(out.resolve("plots/scale-sweep.png")));
        assertTrue(r.notes().stream().anyMatch(n -> n.contains("no CLIP model")));
        assertNotNull(r.set("pale", false).styleScore());
    }
}
