package dev.impasto.eval;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * report.md: the same report in Markdown, pictures linked relative to the report folder (or under a prefix), for
 * model cards, READMEs and docs/showcase.md. The per-picture listing is left out (it is in report.json).
 */
public final class MarkdownReport {
    private MarkdownReport() {}

    /** Writes {@code dir/report.md} with figure links relative to {@code dir}. */
    public static Path write(EvalResult r, Path dir) throws IOException {
        Path file = dir.resolve("report.md");
        Files.writeString(file, render(r, "", 1));
        return file;
    }

    /** The Markdown text; figure links get {@code linkPrefix} in front, headings start at {@code topLevel}. */
    public static String render(EvalResult r, String linkPrefix, int topLevel) {
        ReportDocument doc = ReportDocument.of(r);
        StringBuilder m = new StringBuilder(16 * 1024);
        m.append("#".repeat(topLevel)).append(' ').append(inline(doc.title())).append("\n\n_").append(inline(doc.subtitle())).append("_\n\n");
        for (ReportDocument.Block b : doc.blocks()) {
            switch (b) {
                case ReportDocument.Heading x -> m.append("#".repeat(topLevel + x.level() - 1)).append(' ').append(inline(x.text())).append("\n\n");
                case ReportDocument.Text x -> m.append(inline(x.text())).append("\n\n");
                case ReportDocument.Bullets x -> {
                    for (String i : x.items()) m.append("- ").append(inline(i)).append('\n');
                    m.append('\n');
                }
                case ReportDocument.Table x -> {
                    if (x.collapsed()) {
                        m.append("(").append(x.rows().size()).append(" rows: see report.json or report.html)\n\n");
                        continue;
                    }
                    m.append('|');
                    for (String c : x.headers()) m.append(' ').append(cell(c)).append(" |");
                    m.append("\n|");
                    for (int i = 0; i < x.headers().size(); i++) m.append(i == 0 ? "---|" : "---:|");
                    m.append('\n');
                    for (var row : x.rows()) {
                        m.append('|');
                        for (ReportDocument.Cell c : row) m.append(' ').append(c.best() ? "**" + cell(c.text()) + "**" : cell(c.text())).append(" |");
                        m.append('\n');
                    }
                    m.append('\n');
                }
                case ReportDocument.Figure x -> m.append("![").append(inline(x.caption().split(" — ")[0]).replace("]", ")")).append("](").append(linkPrefix)
                        .append(x.file()).append(")\n\n_").append(inline(x.caption())).append("_\n\n");
            }
        }
        return m.toString();
    }

    private static String cell(String s) {
        return inline(s).replace("|", "\\|");
    }

    /** Markdown's emphasis and markup characters taken literally. */
    private static String inline(String s) {
        return s.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_").replace("<", "&lt;").replace("`", "\\`").replace("\n", " ");
    }
}
