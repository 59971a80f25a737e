"""The dashboard's Jinja2 template.

A Python string rather than a .html file: a function's source zip carries shared/**/*.py only
(infra/modules/function), and the page must render in the cloud as it does locally.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>sttdata dashboard</title>
<style>
  :root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; }
  body { margin: 0; background: #f6f8fa; }
  header { display: flex; justify-content: space-between; align-items: baseline; padding: 12px 24px;
           background: #24292f; color: #fff; }
  header h1 { font-size: 20px; margin: 0; }
  header small { color: #c9d1d9; }
  main { padding: 16px 24px; display: grid; gap: 16px; }
  section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 16px; }
  section h2 { font-size: 16px; margin: 0 0 8px; }
  .figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
  .figure { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px; }
  .figure .value { font-size: 28px; font-weight: 600; }
  .figure .name { color: #57606a; font-size: 13px; }
  .figure.alert .value { color: #c62828; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 16px; }
  figure.chart { margin: 0; }
  figure.chart svg { display: block; width: 100%; max-width: 720px; height: auto; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
  th { color: #57606a; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .state { border-radius: 10px; padding: 1px 8px; font-size: 12px; background: #eaeef2; }
  .state.good { background: #dafbe1; color: #116329; }
  .state.bad { background: #ffebe9; color: #a40e26; }
  .state.busy { background: #ddf4ff; color: #0550ae; }
  progress { width: 120px; }
  .lineage { font-family: ui-monospace, monospace; font-size: 13px; }
  .muted { color: #57606a; }
  .regressions li { margin: 2px 0; }
</style>
</head>
<body data-refresh-seconds="{{ refresh_s }}" data-refreshes="0">
<header>
  <h1>sttdata dashboard</h1>
  <small><span id="refresh-state">figures of {{ facts.generated_at[:19] | replace("T", " ") }} UTC</span>
  {%- if refresh_s %} &middot; refreshes every {{ refresh_s }} s{% endif %}</small>
</header>
<main data-generated-at="{{ facts.generated_at }}">
  {%- set s = facts.statistics %}
  {%- set dl = facts.dead_letters %}
  <div class="figures">
    <div class="figure"><div class="value" data-figure="total_cases">{{ s.total_cases }}</div>
      <div class="name">cases</div></div>
    <div class="figure"><div class="value" data-figure="corrected_cases">{{ s.corrected_cases }}</div>
      <div class="name">corrected</div></div>
    <div class="figure"><div class="value" data-figure="correction_rate">
      {{- "%.1f%%" | format(100 * s.correction_rate) }}</div>
      <div class="name">correction rate</div></div>
    <div class="figure"><div class="value" data-figure="average_error_score">
      {%- if s.average_error_score is none %}-{% else %}{{ "%.3f" | format(s.average_error_score) }}{% endif %}</div>
      <div class="name">average error score</div></div>
    <div class="figure{% if s.quarantined_events %} alert{% endif %}">
      <div class="value" data-figure="quarantined_events">{{ s.quarantined_events }}</div>
      <div class="name">quarantined events</div></div>
    <div class="figure{% if dl.total %} alert{% endif %}">
      <div class="value" data-figure="dead_letters">
        {%- if dl.total is none %}?{% else %}{{ dl.total }}{% if not dl.complete %}+{% endif %}{% endif %}</div>
      <div class="name" {% if dl.error %}title="{{ dl.error }}"{% endif %}>dead-letter backlog
        {%- if dl.error %} (unavailable){% endif %}</div></div>
  </div>

  <div class="charts">
    <section><figure class="chart" data-chart="error-types">{{ charts.error_types }}</figure>
    </section>
    <section><figure class="chart" data-chart="quality">{{ charts.quality }}</figure>
    </section>
    <section><figure class="chart" data-chart="wer">{{ charts.wer }}</figure></section>
    <section><figure class="chart" data-chart="cer">{{ charts.cer }}</figure></section>
  </div>

  {%- set perf = facts.performance %}
  <section>
    <h2>Regressions</h2>
    {%- if perf.best_model %}
    <p>Best model: <b>{{ perf.best_model.model_version }}</b> (mean WER {{ "%.3f" | format(perf.best_model.mean_wer) }}
      over {{ perf.best_model.count }} evaluations); {{ perf.record_count }} evaluations in all.</p>
    {%- endif %}
    {%- if perf.regressions %}
    <ul class="regressions" data-list="regressions">
      {%- for r in perf.regressions %}
      <li><span class="state bad">{{ r.metric | upper }}</span> {{ "%.3f" | format(r.value) }} at
        {{ (r.recorded_at or "")[:16] | replace("T", " ") }} ({{ r.model_version }}), against a window mean of
        {{ "%.3f" | format(r.window_mean) }}: {{ "%+.0f" | format(r.relative_change_percent) }}%</li>
      {%- endfor %}
    </ul>
    {%- else %}<p class="muted" data-list="regressions">No regression.</p>{% endif %}
  </section>

  {%- set v = facts.versions %}
  <section>
    <h2>Dataset versions ({{ v.total }})</h2>
    {%- if v.current_lineage %}
    <p>Current version's lineage: <span class="lineage" data-lineage>{{ v.current_lineage | join(" → ") }}</span></p>
    {%- endif %}
    <table data-table="versions">
      <tr><th></th><th>version</th><th>created</th><th>samples</th><th>quality</th><th>parent</th></tr>
      {%- for row in v.shown %}
      <tr data-version="{{ row.version_id }}">
        <td>{% if row.current %}<span class="state good">current</span>{% endif %}</td>
        <td>{{ row.version_id }}</td><td>{{ (row.created_at or "")[:19] | replace("T", " ") }}</td>
        <td class="num">{{ row.samples if row.samples is not none else "" }}</td>
        <td>{% if row.quality_score is not none %}{{ "%.3f" | format(row.quality_score) }}{% endif %}
          {% if row.quality_passed %}<span class="state good">passed</span>
          {%- elif row.quality_passed is false %}<span class="state bad">failed</span>{% endif %}</td>
        <td>{{ row.parent_version or "" }}</td></tr>
      {%- else %}
      <tr><td colspan="6" class="muted">No version yet: a build request in dataset-requests/ makes one.</td></tr>
      {%- endfor %}
    </table>
  </section>

  {%- set work = facts.recent_work %}
  <section>
    <h2>Recent imports</h2>
    <table data-table="imports">
      <tr><th>import</th><th>state</th><th>progress</th><th>accepted</th><th>duplicates</th><th>rejected</th>
        <th>updated</th></tr>
      {%- for item in work.imports %}
      <tr><td>{{ item.name or item.work_id }}</td><td>{{ state(item.state) }}</td>
        <td>{% if item.state == "running" and item.bytes_total and item.bytes_read is number %}<progress
          value="{{ item.bytes_read }}" max="{{ item.bytes_total }}"></progress>
          {{ (100 * item.bytes_read / item.bytes_total) | round(0, "floor") | int }}%,
          {% elif item.state == "running" %}<progress></progress> {% endif %}{{ item.lines_done or 0 }} lines</td>
        <td class="num">{{ item.accepted or 0 }}</td><td class="num">{{ item.duplicates or 0 }}</td>
        <td class="num">{{ item.rejected or 0 }}</td>
        <td>{{ (item.updated_at or "")[:19] | replace("T", " ") }}</td></tr>
      {%- else %}
      <tr><td colspan="7" class="muted">No import yet: upload a .jsonl or .parquet file to imports/.</td></tr>
      {%- endfor %}
    </table>
  </section>
  <section>
    <h2>Recent builds</h2>
    <table data-table="builds">
      <tr><th>request</th><th>state</th><th>stage</th><th>dataset</th><th>version</th><th>samples</th>
        <th>updated</th></tr>
      {%- for item in work.builds %}
      <tr><td>{{ item.name or item.work_id }}</td><td>{{ state(item.state) }}</td>
        <td>{% if item.state == "running" %}<progress></progress> {% endif %}{{ item.stage or "" }}</td>
        <td>{{ item.dataset_id or "" }}</td><td>{{ item.version_id or "" }}</td>
        <td class="num">{{ item.total_samples if item.total_samples is not none else "" }}</td>
        <td>{{ (item.updated_at or "")[:19] | replace("T", " ") }}</td></tr>
      {%- else %}
      <tr><td colspan="7" class="muted">No build yet: upload a request to dataset-requests/.</td></tr>
      {%- endfor %}
    </table>
  </section>
</main>
<script>
// Refresh: fetch this same page (through `gcloud run services proxy` too: a relative request) and swap <main>.
(function () {
  "use strict";
  var seconds = Number(document.body.dataset.refreshSeconds);
  var stateText = document.getElementById("refresh-state");
  var refreshes = 0;
  var lastGood = stateText.textContent;
  var busy = false;  // a page slower than the period: one fetch at a time
  function refresh() {
    if (document.hidden || busy) { return; }
    busy = true;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (answer) {
        if (!answer.ok) { throw new Error("HTTP " + answer.status); }
        return answer.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.querySelector("main");
        if (!fresh) { throw new Error("no dashboard in the answer"); }
        document.querySelector("main").replaceWith(document.adoptNode(fresh));
        var when = page.getElementById("refresh-state");
        lastGood = when ? when.textContent : "refreshed";
        stateText.textContent = lastGood;
        refreshes += 1;
        document.body.dataset.refreshes = String(refreshes);
      })
      .catch(function (error) {
        stateText.textContent = "refresh failed (" + error.message + "); showing the " + lastGood;
      })
      .finally(function () { busy = false; });
  }
  if (seconds > 0) { window.setInterval(refresh, seconds * 1000); }
}());
</script>
</body>
</html>
"""
