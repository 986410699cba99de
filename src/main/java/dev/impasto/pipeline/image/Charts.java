package dev.impasto.pipeline.image;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYBarRenderer;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.statistics.HistogramDataset;
import org.jfree.data.statistics.HistogramType;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/** PNG charts for reports (JFreeChart, headless). */
public final class Charts {
    private Charts() {}

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
        ChartUtils.saveChartAsPNG(png.toFile(), chart, 800, 450);
    }

    public static void bars(Path png, String title, String axis, Map<String, ? extends Number> values) throws IOException {
        DefaultCategoryDataset ds = new DefaultCategoryDataset();
        values.forEach((k, v) -> ds.addValue(v, axis, k));
        JFreeChart chart = ChartFactory.createBarChart(title, "", axis, ds, PlotOrientation.HORIZONTAL, false, false, false);
        chart.getCategoryPlot().setBackgroundPaint(Color.WHITE);
        ChartUtils.saveChartAsPNG(png.toFile(), chart, 800, Math.max(300, 60 + 28 * values.size()));
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
        ChartUtils.saveChartAsPNG(png.toFile(), chart, 800, 450);
    }
}
