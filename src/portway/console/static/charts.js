// The overview's charts: uPlot over the series the page embedded (no extra request).
(function () {
  "use strict";
  var source = document.getElementById("overview-data");
  if (!source || typeof uPlot === "undefined") return;
  var data = JSON.parse(source.textContent);
  var s = data.series;
  var palette = { a: "#4f46e5", b: "#f79009", bad: "#d92d20", ok: "#12b76a", teal: "#0e9384" };

  function fmt(unit) {
    return function (u, values) {
      return values.map(function (v) {
        if (v == null) return "";
        if (unit === "$") return v === 0 ? "$0" : "$" + (Math.abs(v) < 1 ? v.toPrecision(2) : v.toFixed(2));
        if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
        if (Math.abs(v) >= 1e3) return (v / 1e3).toFixed(1) + "k";
        return (Math.round(v * 100) / 100) + (unit === "%" ? "%" : "");
      });
    };
  }

  var specs = {
    rps: { series: [{ label: "req/s", data: s.rps, stroke: palette.a, fill: "rgba(79,70,229,.10)" }] },
    latency: { unit: " ms", series: [
      { label: "p50", data: s.p50, stroke: palette.a },
      { label: "p99", data: s.p99, stroke: palette.b },
    ] },
    error_rate: { unit: "%", series: [{ label: "errors %", data: s.error_rate, stroke: palette.bad, fill: "rgba(217,45,32,.08)" }] },
    tokens: { series: [{ label: "tokens", data: s.tokens, stroke: palette.teal, fill: "rgba(14,147,132,.10)" }] },
    spend: { unit: "$", series: [{ label: "USD", data: s.spend, stroke: palette.ok, fill: "rgba(18,183,106,.10)" }] },
    cache_rate: { unit: "%", series: [{ label: "hit %", data: s.cache_rate, stroke: palette.a }] },
  };

  // Zero is data (an error rate of 0 %), but a window without calls has nothing to plot.
  function hasData() {
    return data.requests > 0;
  }

  document.querySelectorAll("[data-chart]").forEach(function (figure) {
    var spec = specs[figure.getAttribute("data-chart")];
    var target = figure.querySelector(".plot");
    if (!spec || !target) return;
    if (!hasData()) {
      target.innerHTML = '<div class="no-data">No calls in this window</div>';
      return;
    }
    var opts = {
      width: Math.max(target.clientWidth, 300),
      height: 200,
      cursor: { drag: { x: false, y: false } },
      legend: { show: spec.series.length > 1 },
      scales: { x: { time: true } },
      axes: [
        { stroke: "#667085", grid: { stroke: "#f0f1f3" }, ticks: { stroke: "#e4e7ec" } },
        { stroke: "#667085", grid: { stroke: "#f0f1f3" }, ticks: { stroke: "#e4e7ec" }, size: spec.unit === "$" ? 76 : 60, values: fmt(spec.unit) },
      ],
      series: [{}].concat(spec.series.map(function (one) {
        // Buckets without calls have no latency or rates: few points would draw no line.
        var points = one.data.filter(function (v) { return v != null; }).length;
        return { label: one.label, stroke: one.stroke, fill: one.fill, width: 1.6, spanGaps: false, points: { show: points < 40, size: 5 } };
      })),
    };
    var plot = new uPlot(opts, [s.t].concat(spec.series.map(function (one) { return one.data; })), target);
    figure.setAttribute("data-rendered", "true");
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(target.clientWidth, 300), height: 200 });
    });
  });
})();
