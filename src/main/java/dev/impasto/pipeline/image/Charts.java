package dev.impasto.pipeline.image;

import java.awt.Color;
import java.awt.Font;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.axis.ValueAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.Plot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYBarRenderer;
import org.jfree.data.Range;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.statistics.HistogramDataset;
import org.jfree.data.statistics.HistogramType;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * PNG charts for reports (JFreeChart, headless). On a machine without fonts (a GPU server with no fontconfig fonts:
 * the JDK then fails on the first text it measures) the charts are drawn without text instead of failing the report.
 */
public final class Charts {
    private Charts() {}

    private static volatile Boolean fonts;

    /**
     * Whether this JVM can measure and draw text (probed once). False where the JDK finds no fonts; the system property
     * impasto.noFonts=true makes it false (tests of the fallback).
     */
    public static boolean fontsAvailable() {
        if (Boolean.getBoolean("impasto.noFonts")) return false;
        Boolean f = fonts;
        if (f == null) {
            try {
                new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB).createGraphics().getFontMetrics(new Font(Font.SANS_SERIF, Font.PLAIN, 12)).stringWidth("x");
                f = true;
            } catch (RuntimeException | Error e) {
                f = false;
                System.err.println("[impasto] no fonts on this machine (" + e.getMessage() + "): charts and picture grids are drawn without text. "
                        + "Install fontconfig and a font (e.g. apt install fontconfig fonts-dejavu-core) for labelled ones.");
            }
            fonts = f;
        }
        return f;
    }

    private static void save(Path png, JFreeChart chart, int w, int h) throws IOException {
        if (!fontsAvailable()) withoutText(chart);
        ChartUtils.saveChartAsPNG(png.toFile(), chart, w, h);
    }

    /**
     * No title, legend, axis labels or tick labels, and fixed tick units (choosing them automatically measures the tick
     * labels' text): the chart's shapes only.
     */
    public static void withoutText(JFreeChart chart) {
        chart.setTitle((String) null);
        chart.clearSubtitles();
        Plot p = chart.getPlot();
        if (p instanceof XYPlot xy) {
            fixTicks(xy.getDomainAxis(), xy.getDataRange(xy.getDomainAxis()));
            fixTicks(xy.getRangeAxis(), xy.getDataRange(xy.getRangeAxis()));
        } else if (p instanceof CategoryPlot cp) {
            cp.getDomainAxis().setLabel(null);
            cp.getDomainAxis().setTickLabelsVisible(false);
            fixTicks(cp.getRangeAxis(), cp.getDataRange(cp.getRangeAxis()));
        }
    }

    private static void fixTicks(ValueAxis a, Range data) {
        if (a == null) return;
        a.setLabel(null);
        a.setTickLabelsVisible(false);
        if (a instanceof NumberAxis n) {
            double span = data == null || !(data.getLength() > 0) ? 1 : data.getLength();
            n.setAutoTickUnitSelection(false);
            n.setTickUnit(new NumberTickUnit(span / 8));
        } else if (a instanceof LogAxis l) {
            l.setAutoTickUnitSelection(false);
            l.setTickUnit(new NumberTickUnit(1)); // one decade
        }
    }

    /** One histogram per named series, overlaid. */
    public static void histogram(Path png, String title, String xLabel, Map<String, double[]> series, int bins) throws IOException {
        histogram(png, title, xLabel, series, bins, false);
    }

    /**
     * One histogram per named series, overlaid; with {@code shares} each bar is the series' share of its own count,
     * so series of different sizes (hundreds of training pictures, a dozen samples) compare on one axis.
     */
    public static void histogram(Path png, String title, String xLabel, Map<String, double[]> series, int bins, boolean shares) throws IOException {
        HistogramDataset ds = new HistogramDataset();
        if (shares) ds.setType(HistogramType.RELATIVE_FREQUENCY);
        double min = Double.MAX_VALUE, max = -Double.MAX_VALUE;
        for (double[] v : series.values()) for (double x : v) { min = Math.min(min, x); max = Math.max(max, x); }
        if (min == Double.MAX_VALUE) { min = 0; max = 1; }
        if (max <= min) max = min + 1;
        for (var e : series.entrySet()) if (e.getValue().length > 0) ds.addSeries(e.getKey(), e.getValue(), bins, min, max);
        JFreeChart chart = ChartFactory.createHistogram(title, xLabel, shares ? "share of images" : "images", ds, PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        plot.setForegroundAlpha(0.7f);
        plot.setBackgroundPaint(Color.WHITE);
        ((XYBarRenderer) plot.getRenderer()).setShadowVisible(false);
        save(png, chart, 800, 450);
    }

    public static void bars(Path png, String title, String axis, Map<String, ? extends Number> values) throws IOException {
        DefaultCategoryDataset ds = new DefaultCategoryDataset();
        values.forEach((k, v) -> ds.addValue(v, axis, k));
        JFreeChart chart = ChartFactory.createBarChart(title, "", axis, ds, PlotOrientation.HORIZONTAL, false, false, false);
        chart.getCategoryPlot().setBackgroundPaint(Color.WHITE);
        save(png, chart, 800, Math.max(300, 60 + 28 * values.size()));
    }

    /** Line plot of y over x (e.g. loss over steps), optionally with a smoothed series. */
    public static void line(Path png, String title, String xLabel, String yLabel, Map<String, double[][]> series) throws IOException {
        XYSeriesCollection ds = new XYSeriesCollection();
        for (var e : series.entrySet()) {
            XYSeries s = new XYSeries(e.getKey(), false, true);
            double[][] xy = e.getValue();
            for (int i = 0; i < xy[0].length; i++) s.add(xy[0][i], xy[1][i]);
            ds.addSeries(s);
        }
        JFreeChart chart = ChartFactory.createXYLineChart(title, xLabel, yLabel, ds, PlotOrientation.VERTICAL, series.size() > 1, false, false);
        chart.getXYPlot().setBackgroundPaint(Color.WHITE);
        save(png, chart, 800, 450);
    }
}
