/* The charts of the compliance reports (templates/admin/compliance/daily_report.html and
 * strategy_report.html), drawn with the uPlot the dashboard vendors (monitoring/static/monitoring/vendor/uplot).
 * Data: {"kind": "bars" | "lines", "x": [...], "names": [...] (a name per x), "axis": the x axis's name, "series": [{label, values}]}. */
(function () {
  "use strict";
  var box = document.getElementById("report-chart"), data = document.getElementById("report-chart-data");
  if (!window.uPlot || !box || !data) { return; }
  var chart = JSON.parse(data.textContent);
  if (!chart.x.length) { return; }
  var colours = ["#c0392b", "#2471a3", "#7d8c2f", "#8e44ad", "#d68910", "#17a589", "#566573"];
  var bars = chart.kind === "bars";
  var count = chart.series.length;
  function name(value) { return value == null ? "--" : (chart.names[chart.x.indexOf(value)] || ""); }
  var series = [{label: chart.axis || " ", value: function (u, value) { return name(value); }}].concat(chart.series.map(function (s, index) {
    var colour = colours[index % colours.length];
    var line = {label: s.label, stroke: colour, width: 2};
    if (bars) {
      line.fill = colour;
      // Grouped bars: series ``index`` takes its slice of the 0.8-wide slot around each x.
      var left = chart.x.map(function (x) { return x - 0.4 + index * 0.8 / count; });
      line.paths = window.uPlot.paths.bars({disp: {x0: {unit: 1, values: function () { return left; }},
                                                   size: {unit: 1, values: function () { return [0.8 / count]; }}}});
    }
    return line;
  }));
  // The x values are places (bars: 0, 1, ...; lines: days as Shanghai midnights); the axis names
  // them as the page does, so no browser time zone shifts a day.
  var options = {width: Math.min(box.clientWidth || 800, 1100), height: 260, series: series,
                 axes: [{values: function (u, ticks) { return ticks.map(name); },
                         splits: function () {
                           var step = Math.ceil(chart.x.length / 12);  // at most a dozen names under a long range
                           return chart.x.filter(function (x, index) { return index % step === 0; });
                         }}, {size: 80}],
                 scales: {x: bars ? {time: false, range: [-0.6, chart.x.length - 0.4]} : {time: false, range: function (u, min, max) {
                   var pad = (max - min) * 0.05 || 43200;  // a lone day gets half a day each side
                   return [min - pad, max + pad];
                 }}}};
  new window.uPlot(options, [chart.x].concat(chart.series.map(function (s) { return s.values; })), box);
})();
