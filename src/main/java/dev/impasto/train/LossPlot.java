package dev.impasto.train;

import com.fasterxml.jackson.databind.JsonNode;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/** loss.png from metrics.jsonl: the per-step loss (faint) and its moving average, log scale. */
public final class LossPlot {
    private LossPlot() {}

    public static void write(Path metrics, Path png, String title) throws IOException {
        List<JsonNode> rows = MetricsLog.read(metrics);
        XYSeries raw = new XYSeries("loss"), ema = new XYSeries("moving average");
        for (JsonNode r : rows) {
            double l = r.path("loss").asDouble(Double.NaN), e = r.path("loss_ema").asDouble(Double.NaN);
            long s = r.path("step").asLong();
            if (Double.isFinite(l) && l > 0) raw.add(s, l);
            if (Double.isFinite(e) && e > 0) ema.add(s, e);
        }
        XYSeriesCollection data = new XYSeriesCollection();
        data.addSeries(raw);
        data.addSeries(ema);
        JFreeChart chart = ChartFactory.createXYLineChart(title, "step", "loss (MSE)", data, PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(220, 220, 220));
        plot.setDomainGridlinePaint(new Color(220, 220, 220));
        if (raw.getItemCount() > 1 && raw.getMinY() > 0) {
            LogAxis axis = new LogAxis("loss (MSE, log)");
            axis.setSmallestValue(1e-6);
            plot.setRangeAxis(axis);
        }
        XYLineAndShapeRenderer r = new XYLineAndShapeRenderer(true, false);
        r.setSeriesPaint(0, new Color(120, 150, 200, 110));
        r.setSeriesPaint(1, new Color(200, 70, 40));
        r.setSeriesStroke(1, new BasicStroke(2.2f));
        plot.setRenderer(r);
        if (!dev.impasto.pipeline.image.Charts.fontsAvailable()) dev.impasto.pipeline.image.Charts.withoutText(chart); // a server without fonts
        dev.impasto.image.Png.write(chart.createBufferedImage(900, 480), png, java.util.Map.of("Software", "impasto"));
    }
}
