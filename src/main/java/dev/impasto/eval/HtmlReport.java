package dev.impasto.eval;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Locale;

/** report.html: one self-contained page (every PNG inlined as a data: URI) from an {@link EvalResult}. */
public final class HtmlReport {
    private HtmlReport() {}

    /** Writes {@code dir/report.html}; the figures are read from {@code dir}. */
    public static Path write(EvalResult r, Path dir) throws IOException {
        StringBuilder h = new StringBuilder(64 * 1024);
        h.append("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").append(esc(r.title())).append("</title>\n<style>")
                .append("body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222;background:#fbfaf7}")
                .append("table{border-collapse:collapse;margin:.6em 0 1.4em}td,th{border:1px solid #d8d4cc;padding:3px 8px;text-align:right}")
                .append("th{background:#efebe3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd;margin:.3em 0}")
                .append(".best{background:#dff0d8;font-weight:600}.muted{color:#777}figure{margin:1em 0}figcaption{color:#555;font-size:13px}")
                .append("code{background:#eee;padding:0 3px}</style></head><body>\n");
        h.append("<h1>").append(esc(r.title())).append("</h1>\n<p class=\"muted\">").append(esc(r.created())).append(" · model ").append(esc(r.model()))
                .append(" on ").append(esc(r.backend())).append(" · ").append(fmt(r.seconds())).append(" s · ").append(r.images().size()).append(" pictures generated</p>\n");

        List<EvalResult.SetResult> loraSets = r.sets().stream().filter(s -> "lora".equals(s.kind())).toList();
        h.append("<h2>Summary</h2>\n<p>Each set of pictures is compared with the training pictures, metric by metric, as distributions ")
                .append("(Wasserstein-1). <b>Style gap closed</b> = 1 − W1(LoRA, training) / W1(base, training), averaged over the metrics: ")
                .append("1 means the LoRA's pictures match the training distribution, 0 means no closer than the base, negative means further. ")
                .append("<b>Distance</b> is the mean W1 to training in units of the training distribution's standard deviation (lower is closer).");
        if (r.kidFeatures() != null) h.append(" <b>KID</b> is the kernel distance between the set's and the training pictures' feature distributions (")
                .append(esc(r.kidFeatures())).append("; lower is closer, about 0 for matching distributions).");
        h.append("</p>\n");
        h.append("<table><tr><th>set</th><th>pictures</th><th>style gap closed</th><th>distance (SD)</th>");
        if (r.kidFeatures() != null) h.append("<th>KID</th>");
        if (r.clipModel() != null) h.append("<th>CLIP score</th>");
        h.append("</tr>\n");
        Double bestScore = loraSets.stream().map(EvalResult.SetResult::styleScore).filter(x -> x != null).max(Double::compare).orElse(null);
        for (EvalResult.SetResult s : r.sets()) {
            h.append("<tr><td>").append(esc(s.name())).append("</td><td>").append(s.count()).append("</td>");
            h.append(cell(s.styleScore(), bestScore != null && loraSets.size() > 1 && s.styleScore() != null && s.styleScore().equals(bestScore)));
            h.append(cell(s.distanceSd(), false));
            if (r.kidFeatures() != null) h.append(s.kid() == null || "train".equals(s.kind()) ? "<td class=muted>–</td>"
                    : "<td>" + fmt(s.kid().mean()) + " ± " + fmt(s.kid().std()) + "</td>");
            if (r.clipModel() != null) h.append(cell(s.clipScore(), false));
            h.append("</tr>\n");
        }
        h.append("</table>\n");

        if (!r.loras().isEmpty()) {
            h.append("<h2>LoRAs compared</h2>\n<table><tr><th>LoRA</th>");
            for (String f : r.comparedFields()) h.append("<th>").append(esc(f)).append("</th>");
            h.append("<th>final loss</th><th>style gap closed</th><th>distance (SD)</th>");
            if (r.kidFeatures() != null) h.append("<th>KID</th>");
            h.append("</tr>\n");
            for (EvalResult.LoraInfo l : r.loras()) {
                EvalResult.SetResult s = r.sets().stream().filter(x -> l.name().equals(x.lora()) && x.scale() == 1.0).findFirst()
                        .orElse(r.sets().stream().filter(x -> l.name().equals(x.lora())).findFirst().orElse(null));
                h.append("<tr><td>").append(esc(l.name())).append("</td>");
                for (String f : r.comparedFields()) h.append("<td>").append(esc(l.config().get(f) == null ? "–" : l.config().get(f))).append("</td>");
                h.append(cell(l.finalLoss(), false));
                h.append(cell(s == null ? null : s.styleScore(), s != null && loraSets.size() > 1 && s.styleScore() != null && s.styleScore().equals(bestScore)));
                h.append(cell(s == null ? null : s.distanceSd(), false));
                if (r.kidFeatures() != null) h.append(cell(s == null || s.kid() == null ? null : s.kid().mean(), false));
                h.append("</tr>\n");
            }
            h.append("</table>\n");
        }

        h.append("<h2>Metric distributions</h2>\n<p>Mean ± standard deviation per set.</p>\n");
        metricTable(h, r, r.sets(), "mean");
        h.append("<p>Wasserstein-1 distance to the training pictures (gap closed relative to the base in brackets).</p>\n");
        metricTable(h, r, r.sets(), "w1");
        for (EvalResult.Figure f : r.plots()) figure(h, dir, f);

        h.append("<h2>Pictures</h2>\n<p>Same prompts and seeds for every row.</p>\n");
        for (EvalResult.Figure f : r.grids()) if (!f.file().contains("/transfer-")) figure(h, dir, f);

        h.append("<h2>Style transfer</h2>\n");
        if (r.transferSets().isEmpty()) h.append("<p class=muted>No transfer prompts were given (<code>--transfer-prompt</code>).</p>\n");
        else {
            h.append("<p>Prompts of subjects outside the training genres: does the style carry over? The same metrics, against the training pictures, ")
                    .append("with the gap closed relative to the base on these prompts.</p>\n");
            h.append("<ul>");
            for (String p : r.settings().transferPrompts) h.append("<li>").append(esc(r.settings().expand(p))).append("</li>");
            h.append("</ul>\n");
            metricTable(h, r, r.transferSets(), "mean");
            metricTable(h, r, r.transferSets(), "w1");
            for (EvalResult.Figure f : r.grids()) if (f.file().contains("/transfer-")) figure(h, dir, f);
        }

        h.append("<h2>Settings</h2>\n<table>");
        EvalSettings s = r.settings();
        row(h, "prompts", String.join(" | ", s.prompts.stream().map(s::expand).toList()));
        row(h, "seeds", s.seeds.toString());
        row(h, "steps / guidance", s.steps + " / " + s.guidance);
        row(h, "size", s.width + "×" + s.height + " (measured at shorter side " + r.analysisSize() + ")");
        row(h, "LoRA strengths", s.scales.toString());
        row(h, "training pictures", r.trainingImages());
        if (!r.trainingGenres().isEmpty()) row(h, "training genres", r.trainingGenres().toString());
        row(h, "KID features", r.kidFeatures() == null ? "none" : r.kidFeatures() + " (" + s.kidSubsets + " subsets of up to " + s.kidSubsetSize + ")");
        row(h, "CLIP model", r.clipModel() == null ? "none" : r.clipModel());
        for (EvalResult.LoraInfo l : r.loras()) row(h, "LoRA " + l.name(), l.file() + (l.run() == null ? "" : " (run " + l.run() + ")"));
        if (!s.command.isEmpty()) row(h, "command", String.join(" ", s.command));
        h.append("</table>\n<h3>Metrics</h3>\n<ul>");
        for (EvalResult.MetricInfo m : r.metrics()) h.append("<li><b>").append(esc(m.label())).append("</b> (<code>").append(esc(m.key())).append("</code>): ").append(esc(m.description())).append("</li>");
        h.append("</ul>\n");
        if (!r.notes().isEmpty()) {
            h.append("<h3>Notes</h3>\n<ul>");
            for (String n : r.notes()) h.append("<li>").append(esc(n)).append("</li>");
            h.append("</ul>\n");
        }

        h.append("<details><summary>Every picture (").append(r.images().size()).append(")</summary>\n<table><tr><th>set</th><th>prompt</th><th>seed</th>");
        for (EvalResult.MetricInfo m : r.metrics()) h.append("<th>").append(esc(m.key())).append("</th>");
        if (r.clipModel() != null) h.append("<th>CLIP</th>");
        h.append("<th>ms</th><th>file</th></tr>\n");
        for (EvalResult.ImageResult im : r.images()) {
            h.append("<tr><td>").append(esc(im.set())).append(im.transfer() ? " (transfer)" : "").append("</td><td>").append(esc(im.prompt())).append("</td><td>").append(im.seed()).append("</td>");
            for (EvalResult.MetricInfo m : r.metrics()) h.append(cell(im.metrics().get(m.key()), false));
            if (r.clipModel() != null) h.append(cell(im.clipScore(), false));
            h.append("<td>").append(im.millis()).append("</td><td>");
            if (im.file() != null) h.append("<a href=\"").append(esc(im.file())).append("\">").append(esc(im.file())).append("</a>");
            h.append("</td></tr>\n");
        }
        h.append("</table></details>\n<p class=muted>Generated by <code>impasto eval</code>; the numbers are in report.json.</p>\n</body></html>\n");
        Path file = dir.resolve("report.html");
        Files.writeString(file, h.toString());
        return file;
    }

    private static void metricTable(StringBuilder h, EvalResult r, List<EvalResult.SetResult> sets, String what) {
        h.append("<table><tr><th>set</th>");
        for (EvalResult.MetricInfo m : r.metrics()) h.append("<th>").append(esc(m.label())).append("</th>");
        h.append("</tr>\n");
        for (EvalResult.SetResult s : sets) {
            if ("w1".equals(what) && "train".equals(s.kind())) continue;
            h.append("<tr><td>").append(esc(s.name())).append("</td>");
            for (EvalResult.MetricInfo m : r.metrics()) {
                if ("mean".equals(what)) {
                    Distributions.Summary su = s.summary().get(m.key());
                    h.append("<td>").append(fmt(su.mean())).append(" ± ").append(fmt(su.std())).append("</td>");
                } else {
                    Double gap = s.gapClosed().get(m.key());
                    h.append("<td>").append(fmt(s.w1ToTraining().get(m.key()))).append(gap == null ? "" : " (" + fmt(gap) + ")").append("</td>");
                }
            }
            h.append("</tr>\n");
        }
        h.append("</table>\n");
    }

    private static void figure(StringBuilder h, Path dir, EvalResult.Figure f) throws IOException {
        Path p = dir.resolve(f.file());
        if (!Files.isRegularFile(p)) return;
        h.append("<figure><img alt=\"").append(esc(f.caption())).append("\" src=\"data:image/png;base64,")
                .append(Base64.getEncoder().encodeToString(Files.readAllBytes(p))).append("\"><figcaption>").append(esc(f.caption()))
                .append(" <span class=muted>(").append(esc(f.file())).append(")</span></figcaption></figure>\n");
    }

    private static void row(StringBuilder h, String k, String v) {
        h.append("<tr><td>").append(esc(k)).append("</td><td style=\"text-align:left\">").append(esc(v)).append("</td></tr>\n");
    }

    private static String cell(Double v, boolean best) {
        return (best ? "<td class=best>" : "<td>") + (v == null ? "–" : fmt(v)) + "</td>";
    }

    static String fmt(Double v) {
        if (v == null || !Double.isFinite(v)) return "–";
        double a = Math.abs(v);
        if (a < 1e-9) return "0";
        if (a >= 100) return String.format(Locale.ROOT, "%.1f", v);
        if (a >= 0.01) return String.format(Locale.ROOT, "%.3f", v);
        return String.format(Locale.ROOT, "%.2e", v);
    }

    static String esc(String s) {
        if (s == null) return "";
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray())
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        return b.toString();
    }
}
