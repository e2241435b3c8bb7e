//! The report page: HTML with inline CSS and SVG, nothing external, no
//! script (opens from a file in any browser, offline). Pure: data in, text
//! out.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::fetch::{ReportData, RunPoint};
use crate::harness::args::format_duration;

/// A further part of the page (e.g. the `jobctl status` table), drawn after
/// the overview with its own heading. `html` is trusted markup.
#[derive(Debug, Clone)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub html: String,
}

/// Every status and its colour, in legend order.
pub const STATUS_COLOURS: &[(&str, &str)] = &[
    ("succeeded", "#2e7d32"),
    ("partial", "#f9a825"),
    ("failed", "#c62828"),
    ("timed_out", "#6a1b9a"),
    ("abandoned", "#4e342e"),
    ("cancelled", "#757575"),
    ("skipped", "#90caf9"),
    ("running", "#1565c0"),
];

fn colour(status: &str) -> &'static str {
    STATUS_COLOURS
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, c)| *c)
        .unwrap_or("#9e9e9e")
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:24px;color:#212121;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#616161;font-size:13px}
.tiles{display:flex;gap:10px;flex-wrap:wrap;margin:14px 0}
.tile{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:8px 12px;min-width:90px}
.tile b{display:block;font-size:20px}.tile span{font-size:12px;color:#616161}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;margin:6px 0}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px}
svg{background:#fff;border:1px solid #e0e0e0;border-radius:6px}
svg text{font-size:11px;fill:#424242}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
.panel h3{font-size:13px;margin:0 0 4px}
table{border-collapse:collapse;font-size:12px;background:#fff}
td,th{border:1px solid #e0e0e0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
";

/// The whole page.
pub fn render(data: &ReportData, sections: &[Section]) -> String {
    let mut h = String::with_capacity(64 * 1024 + data.runs.len() * 400);
    let days = (data.to - data.from).num_days().max(1);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>climate-jobs: runs of the last {days} day(s)</title><style>{CSS}</style></head><body>\
         <h1>climate-jobs run history</h1>\
         <p class=\"meta\">{} to {} (UTC) · generated {} · {} run(s) of {} job(s)</p>",
        fmt_time(data.from),
        fmt_time(data.to),
        fmt_time(data.generated_at),
        data.runs.len(),
        data.jobs().len()
    );
    tiles(&mut h, data);
    for s in sections {
        let _ = write!(
            h,
            "<section id=\"{}\"><h2>{}</h2>{}</section>",
            esc(&s.id),
            esc(&s.title),
            s.html
        );
    }
    legend(&mut h);
    h.push_str("<section id=\"timeline\"><h2>Runs per job</h2>");
    timeline(&mut h, data);
    h.push_str(
        "</section><section id=\"durations\"><h2>Duration against timeout</h2><div class=\"grid\">",
    );
    for job in data.jobs() {
        durations(&mut h, data, job);
    }
    h.push_str(
        "</div></section><section id=\"failures\"><h2>Failed tasks and dead letters per day</h2>",
    );
    failures(&mut h, data);
    h.push_str("</section>");
    recent_failures(&mut h, data);
    h.push_str("</body></html>\n");
    h
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn tiles(h: &mut String, data: &ReportData) {
    h.push_str("<div class=\"tiles\">");
    for (status, c) in STATUS_COLOURS {
        let n = data.runs.iter().filter(|r| r.status == *status).count();
        if n > 0 {
            let _ = write!(
                h,
                "<div class=\"tile\" style=\"border-left:4px solid {c}\"><b>{n}</b><span>{status}</span></div>"
            );
        }
    }
    for (status, n) in &data.letters_by_status {
        let _ = write!(
            h,
            "<div class=\"tile\"><b>{n}</b><span>dead letters {}</span></div>",
            esc(status)
        );
    }
    h.push_str("</div>");
}

fn legend(h: &mut String) {
    h.push_str("<div class=\"legend\">");
    for (status, c) in STATUS_COLOURS {
        let _ = write!(h, "<span><i style=\"background:{c}\"></i>{status}</span>");
    }
    h.push_str("</div>");
}

/// Maps a time in the window to an x coordinate in [x0, x0 + width].
struct TimeAxis {
    from: DateTime<Utc>,
    span_ms: f64,
    x0: f64,
    width: f64,
}

impl TimeAxis {
    fn new(data: &ReportData, x0: f64, width: f64) -> Self {
        let span_ms = (data.to - data.from).num_milliseconds().max(1) as f64;
        TimeAxis {
            from: data.from,
            span_ms,
            x0,
            width,
        }
    }

    fn x(&self, t: DateTime<Utc>) -> f64 {
        let f = (t - self.from).num_milliseconds() as f64 / self.span_ms;
        self.x0 + f.clamp(0.0, 1.0) * self.width
    }

    /// Vertical grid lines with a date at each UTC midnight (every few days
    /// when the window is long).
    fn ticks(&self, h: &mut String, data: &ReportData, top: f64, bottom: f64) {
        let days = (data.to - data.from).num_days().max(1);
        let step = (days / 10 + 1).max(1);
        let mut day = data.from.date_naive().succ_opt();
        let mut i = 0;
        while let Some(d) = day {
            let Some(t) = d.and_hms_opt(0, 0, 0).map(|n| n.and_utc()) else {
                break;
            };
            if t > data.to {
                break;
            }
            if i % step == 0 {
                let x = self.x(t);
                let _ = write!(
                    h,
                    "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#eeeeee\"/>\
                     <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                    bottom + 13.0,
                    d.format("%b %d")
                );
            }
            i += 1;
            day = d.succ_opt();
        }
    }
}

fn run_title(r: &RunPoint) -> String {
    let mut t = format!(
        "{} {} · {} · started {} · {}",
        r.job,
        r.run_id,
        r.status,
        fmt_time(r.started_at),
        format_duration(std::time::Duration::from_millis(r.duration_ms.max(0) as u64))
    );
    if let Some(code) = r.exit_code {
        let _ = write!(t, " · exit {code}");
    }
    if r.failed_tasks > 0 {
        let _ = write!(t, " · {} failed task(s)", r.failed_tasks);
    }
    if let Some(e) = &r.error {
        let _ = write!(t, " · {e}");
    }
    esc(&t)
}

const LABEL_W: f64 = 200.0;
const PLOT_W: f64 = 900.0;

fn timeline(h: &mut String, data: &ReportData) {
    let jobs = data.jobs();
    let row = 28.0;
    let top = 8.0;
    let height = top + row * jobs.len() as f64 + 24.0;
    let width = LABEL_W + PLOT_W + 20.0;
    let axis = TimeAxis::new(data, LABEL_W, PLOT_W);
    let _ = write!(
        h,
        "<svg class=\"timeline\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"runs per job over time\">"
    );
    axis.ticks(h, data, top, top + row * jobs.len() as f64);
    for (i, job) in jobs.iter().enumerate() {
        let y = top + row * i as f64;
        let runs: Vec<&RunPoint> = data.runs.iter().filter(|r| r.job == *job).collect();
        let ok = runs.iter().filter(|r| r.status == "succeeded").count();
        let _ = write!(
            h,
            "<text x=\"8\" y=\"{:.1}\">{} <tspan fill=\"#757575\">{} runs, {}% ok</tspan></text>",
            y + 17.0,
            esc(job),
            runs.len(),
            ok * 100 / runs.len().max(1)
        );
        let _ = write!(
            h,
            "<line x1=\"{LABEL_W}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#f0f0f0\"/>",
            y + row,
            LABEL_W + PLOT_W,
            y + row
        );
        for r in runs {
            let x = axis.x(r.started_at);
            let w = (axis.x(r.ended_at) - x).max(3.0);
            let _ = write!(
                h,
                "<rect class=\"run {}\" data-job=\"{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"18\" rx=\"2\" fill=\"{}\"><title>{}</title></rect>",
                esc(&r.status),
                esc(&r.job),
                y + 4.0,
                colour(&r.status),
                run_title(r)
            );
        }
    }
    h.push_str("</svg>");
}

fn durations(h: &mut String, data: &ReportData, job: &str) {
    let (w, ht, left, top, bottom) = (520.0, 170.0, 56.0, 10.0, 140.0);
    let runs: Vec<&RunPoint> = data.runs.iter().filter(|r| r.job == job).collect();
    let timeout_ms = data.timeouts.get(job).map(|d| d.as_millis() as f64);
    let longest = runs
        .iter()
        .map(|r| r.duration_ms.max(0) as f64)
        .fold(0.0, f64::max);
    let y_max = (timeout_ms.unwrap_or(0.0).max(longest) * 1.1).max(1000.0);
    let axis = TimeAxis::new(data, left, w - left - 10.0);
    let y = |ms: f64| bottom - (ms / y_max).clamp(0.0, 1.0) * (bottom - top);
    let caption = match timeout_ms {
        Some(t) => format!(
            "timeout {}",
            format_duration(std::time::Duration::from_millis(t as u64))
        ),
        None => "timeout unknown (not in jobs.yaml)".into(),
    };
    let _ = write!(
        h,
        "<div class=\"panel\"><h3>{} <span class=\"meta\">{}</span></h3>\
         <svg class=\"durations\" data-job=\"{}\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(job),
        esc(&caption),
        esc(job)
    );
    axis.ticks(h, data, top, bottom);
    for frac in [0.0, 0.5, 1.0] {
        let ms = y_max * frac;
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 4.0,
            y(ms) + 4.0,
            short_duration(ms)
        );
    }
    let _ = write!(
        h,
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#bdbdbd\"/>",
        w - 10.0
    );
    if let Some(t) = timeout_ms {
        let _ = write!(
            h,
            "<line class=\"timeout\" x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#c62828\" stroke-dasharray=\"5 4\"/>",
            y(t),
            w - 10.0,
            y(t)
        );
    }
    for r in runs.iter().filter(|r| r.status != "skipped") {
        let _ = write!(
            h,
            "<circle class=\"duration {}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{}</title></circle>",
            esc(&r.status),
            axis.x(r.started_at),
            y(r.duration_ms.max(0) as f64),
            colour(&r.status),
            run_title(r)
        );
    }
    h.push_str("</svg></div>");
}

fn short_duration(ms: f64) -> String {
    let s = ms / 1000.0;
    if s < 90.0 {
        format!("{s:.0}s")
    } else if s < 5400.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

fn failures(h: &mut String, data: &ReportData) {
    let (w, ht, left, top, bottom) = (LABEL_W + PLOT_W + 20.0, 200.0, 56.0, 14.0, 170.0);
    let n = data.days.len().max(1);
    let slot = (w - left - 20.0) / n as f64;
    let bar = (slot * 0.38).clamp(1.0, 24.0);
    let max = data
        .days
        .iter()
        .map(|d| d.failed_tasks.max(d.dead_letters))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y = |v: f64| bottom - (v / max) * (bottom - top);
    let _ = write!(
        h,
        "<div class=\"legend\"><span><i style=\"background:#ef6c00\"></i>failed or timed-out tasks</span>\
         <span><i style=\"background:#ad1457\"></i>dead letters written</span></div>\
         <svg class=\"failures\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#bdbdbd\"/>\
         <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">0</text>",
        w - 20.0,
        left - 4.0,
        top + 4.0,
        max as i64,
        left - 4.0,
        bottom + 4.0
    );
    let label_every = (n / 14 + 1).max(1);
    for (i, d) in data.days.iter().enumerate() {
        let x = left + slot * i as f64 + slot / 2.0;
        for (k, (v, c, class)) in [
            (d.failed_tasks, "#ef6c00", "failed-tasks"),
            (d.dead_letters, "#ad1457", "dead-letters"),
        ]
        .into_iter()
        .enumerate()
        {
            let bx = x - bar + bar * k as f64;
            let top_y = y(v as f64);
            let _ = write!(
                h,
                "<rect class=\"{class}\" x=\"{bx:.1}\" y=\"{top_y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{c}\"><title>{}: {v} {}</title></rect>",
                bottom - top_y,
                d.day,
                class.replace('-', " ")
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                h,
                "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                bottom + 14.0,
                d.day.format("%b %d")
            );
        }
    }
    h.push_str("</svg>");
}

fn recent_failures(h: &mut String, data: &ReportData) {
    let mut bad: Vec<&RunPoint> = data
        .runs
        .iter()
        .filter(|r| {
            matches!(
                r.status.as_str(),
                "failed" | "timed_out" | "partial" | "abandoned"
            )
        })
        .collect();
    if bad.is_empty() {
        return;
    }
    bad.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    h.push_str(
        "<section id=\"recent-failures\"><h2>Latest runs that did not succeed</h2><table>\
         <tr><th>started (UTC)</th><th>job</th><th>status</th><th>exit</th><th>failed tasks</th><th>error</th></tr>",
    );
    for r in bad.iter().take(20) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td style=\"color:{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            fmt_time(r.started_at),
            esc(&r.job),
            colour(&r.status),
            esc(&r.status),
            r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            r.failed_tasks,
            esc(r.error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::report::fetch::Day;
    use chrono::Duration as ChronoDuration;
    use uuid::Uuid;

    fn data() -> ReportData {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let (from, to) = (now - ChronoDuration::days(2), now);
        let run = |job: &str, status: &str, hours_ago: i64, error: Option<&str>| RunPoint {
            job: job.into(),
            run_id: Uuid::nil(),
            status: status.into(),
            started_at: now - ChronoDuration::hours(hours_ago),
            ended_at: now - ChronoDuration::hours(hours_ago) + ChronoDuration::minutes(5),
            duration_ms: 300_000,
            failed_tasks: i64::from(status == "partial"),
            exit_code: Some(0),
            error: error.map(String::from),
        };
        ReportData {
            generated_at: now,
            from,
            to,
            runs: vec![
                run("a-job", "succeeded", 30, None),
                run("a-job", "partial", 3, Some("<b>1 of 2</b> failed")),
                run("b-job", "failed", 1, None),
            ],
            timeouts: [("a-job".to_string(), std::time::Duration::from_secs(600))].into(),
            days: vec![Day {
                day: now.date_naive(),
                failed_tasks: 1,
                dead_letters: 1,
            }],
            letters_by_status: Default::default(),
        }
    }

    #[test]
    fn every_run_is_a_coloured_rect_and_text_is_escaped() {
        let page = render(&data(), &[]);
        assert_eq!(page.matches("<rect class=\"run ").count(), 3);
        assert!(page.contains("fill=\"#f9a825\""), "partial is amber");
        assert!(page.contains("&lt;b&gt;1 of 2&lt;/b&gt;"));
        assert!(!page.contains("<b>1 of 2</b>"));
        assert_eq!(
            page.matches("class=\"timeout\"").count(),
            1,
            "a-job has a timeout, b-job none"
        );
        assert!(page.contains("timeout unknown"));
        assert!(
            !page.contains("src=") && !page.contains("href="),
            "no external resources"
        );
    }

    #[test]
    fn sections_are_placed_with_their_heading() {
        let s = Section {
            id: "status".into(),
            title: "Status".into(),
            html: "<table id=\"status-table\"></table>".into(),
        };
        let page = render(&data(), &[s]);
        assert!(page.contains(
            "<section id=\"status\"><h2>Status</h2><table id=\"status-table\"></table></section>"
        ));
    }
}
