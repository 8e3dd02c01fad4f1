//! The week's report as one self-contained HTML page: inline CSS and hand-written SVG, no
//! script, nothing fetched, so it opens offline, in a mail attachment or on a phone.
//!
//! Two charts: a 7 × 48 heat map of the wake rate (day × half-hour; each cell's title gives
//! the rates and the lift, shown on hover or a long press), and the deliveries per slot as
//! stacked bars (sent, pruned, failed). The summary lines come first.

use std::fmt::Write as _;

use super::render::{percent, points};
use super::wake::{DAYS, SLOTS_PER_DAY};
use super::{SlotReport, WeekReport};

const STYLE: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans KR',sans-serif;margin:0;\
padding:12px;color:#1b1f24;background:#fff;max-width:1100px}\
h1{font-size:1.3em;margin:.2em 0 .6em}h2{font-size:1.05em;margin:1.4em 0 .4em}\
ul.summary{list-style:none;padding:0;margin:0}ul.summary li{padding:2px 0;border-bottom:1px solid #eef0f2}\
svg{width:100%;height:auto;display:block}svg text{font:10px sans-serif;fill:#57606a}\
.legend span{display:inline-block;width:14px;height:10px;margin:0 3px 0 10px;vertical-align:middle}\
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9em}\
td,th{padding:3px 8px;text-align:right;border-bottom:1px solid #eef0f2}td:first-child,th:first-child{text-align:left}\
.note{color:#57606a;font-size:.9em}";

const SENT: &str = "#2da44e";
const PRUNED: &str = "#d4a72c";
const FAILED: &str = "#cf222e";
const NO_DATA: &str = "#c9d1d9";

impl WeekReport {
    pub(crate) fn html(&self) -> String {
        let mut page = String::with_capacity(96 * 1024);
        let title = format!("wolley-push: week {}", self.week);
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<ul class=\"summary\">",
            escape(&title),
            escape(&title)
        );
        for line in self.summary_lines() {
            let _ = write!(page, "<li>{}</li>", escape(&line));
        }
        page.push_str("</ul>\n<h2>Wake rate per slot</h2>\n");
        page.push_str(&self.heat_map());
        page.push_str(LEGEND);
        page.push_str("<h2>Deliveries per slot</h2>\n");
        page.push_str(&self.delivery_bars());
        let _ = write!(
            page,
            "<p class=\"legend\"><span style=\"background:{SENT}\"></span>sent\
             <span style=\"background:{PRUNED}\"></span>pruned<span style=\"background:{FAILED}\"></span>failed</p>"
        );
        if let Some(uploads) = &self.uploads {
            let _ = write!(
                page,
                "<h2>Uploads after path-daily</h2><pre>{}</pre>",
                escape(&serde_json::to_string_pretty(uploads).expect("reports serialise"))
            );
        }
        page.push_str("<h2>Days</h2>\n<div class=\"scroll\"><pre>");
        page.push_str(&escape(&self.human_table()));
        page.push_str(
            "</pre></div>\n<p class=\"note\">Wake rate: of the users with a GPS point that day, \
            the share with a point in the window after the push; lift: that minus the share in the same \
            window before it. Definitions: docs/stats.md.</p>\n</body></html>\n",
        );
        page
    }

    fn human_table(&self) -> String {
        let text = self.human();
        text.split_once("\n\n").map_or(text.clone(), |(_, table)| table.to_owned())
    }

    /// 48 columns of half-hours, 7 rows of days.
    fn heat_map(&self) -> String {
        const CELL_W: usize = 14;
        const CELL_H: usize = 20;
        const LEFT: usize = 74;
        const TOP: usize = 16;
        let (width, height) = (LEFT + CELL_W * SLOTS_PER_DAY + 4, TOP + CELL_H * DAYS + 4);
        let mut svg = format!(
            "<svg id=\"heatmap\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
             aria-label=\"wake rate per day and half-hour\">"
        );
        for hour in (0..24).step_by(3) {
            let x = LEFT + hour * 2 * CELL_W;
            let _ = write!(svg, "<text x=\"{x}\" y=\"11\">{hour:02}:00</text>");
        }
        for (day, slots) in self.slots.chunks(SLOTS_PER_DAY).enumerate() {
            let y = TOP + day * CELL_H;
            let date = slots[0].slot.get(..10).unwrap_or("?");
            let _ = write!(svg, "<text x=\"0\" y=\"{}\">{}</text>", y + 14, escape(date));
            for (half, slot) in slots.iter().enumerate() {
                let x = LEFT + half * CELL_W;
                let _ = write!(
                    svg,
                    "<rect class=\"cell\" x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                    CELL_W - 1,
                    CELL_H - 1,
                    cell_colour(slot),
                    escape(&cell_title(slot))
                );
            }
        }
        svg.push_str("</svg>\n");
        svg
    }

    /// One stacked bar per slot: sent, pruned, failed; a red mark under a slot not sent.
    fn delivery_bars(&self) -> String {
        let width = BAR_W * self.slots.len();
        let tallest = self
            .slots
            .iter()
            .map(|s| s.delivery.sent + s.delivery.pruned + s.delivery.failed)
            .max()
            .unwrap_or(0);
        let scale = |count: u64| (count as f64 / tallest.max(1) as f64 * HEIGHT as f64).round() as usize;
        let mut svg = format!(
            "<svg id=\"deliveries\" viewBox=\"0 0 {width} {}\" preserveAspectRatio=\"none\" role=\"img\" \
             aria-label=\"deliveries per slot\">",
            HEIGHT + BOTTOM
        );
        for (k, slot) in self.slots.iter().enumerate() {
            delivery_bar(&mut svg, k * BAR_W, slot, scale);
        }
        for day in 1..DAYS {
            let x = day * SLOTS_PER_DAY * BAR_W;
            let _ = write!(svg, "<line x1=\"{x}\" y1=\"0\" x2=\"{x}\" y2=\"{HEIGHT}\" stroke=\"#d0d7de\"/>");
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// A slot's width in the delivery chart.
const BAR_W: usize = 3;
/// The delivery chart's bars at their tallest.
const HEIGHT: usize = 120;
/// Room under the bars for the mark of a slot not sent.
const BOTTOM: usize = 14;

/// A slot's bar at `x`, its counts `scale`d to heights; a red mark under it when it was not sent.
fn delivery_bar(svg: &mut String, x: usize, slot: &SlotReport, scale: impl Fn(u64) -> usize) {
    let d = &slot.delivery;
    if d.shards == 0 {
        let _ = write!(
            svg,
            "<rect class=\"missing\" x=\"{x}\" y=\"{}\" width=\"{BAR_W}\" height=\"6\" fill=\"{FAILED}\">\
             <title>{} not sent</title></rect>",
            HEIGHT + 4,
            escape(&slot.slot)
        );
        return;
    }
    let mut top = HEIGHT;
    for (count, colour) in [(d.sent, SENT), (d.pruned, PRUNED), (d.failed, FAILED)] {
        let h = scale(count);
        if h == 0 {
            continue;
        }
        top -= h.min(top);
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x}\" y=\"{top}\" width=\"{}\" height=\"{h}\" fill=\"{colour}\">\
             <title>{}: sent {}, pruned {}, failed {}</title></rect>",
            BAR_W - 1,
            escape(&slot.slot),
            d.sent,
            d.pruned,
            d.failed
        );
    }
}

const LEGEND: &str = "<p class=\"legend\">wake rate <span style=\"background:#eef6fb\"></span>0%\
    <span style=\"background:#6baed6\"></span>50%<span style=\"background:#08306b\"></span>100%\
    <span style=\"background:#c9d1d9\"></span>no active users<span style=\"background:#fbe3e4\"></span>not sent</p>\n";

/// From pale (nobody woke) to deep blue (everyone did); grey without active users; pink when
/// the slot was not sent.
fn cell_colour(slot: &SlotReport) -> String {
    if slot.delivery.shards == 0 {
        return "#fbe3e4".to_owned();
    }
    let Some(rate) = slot.wake_rate else { return NO_DATA.to_owned() };
    let t = rate.clamp(0.0, 1.0);
    let mix = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(238.0, 8.0), mix(246.0, 48.0), mix(251.0, 107.0))
}

fn cell_title(slot: &SlotReport) -> String {
    if slot.delivery.shards == 0 {
        return format!("{}: not sent", slot.slot);
    }
    match (slot.wake_rate, slot.baseline_rate, slot.lift) {
        (Some(rate), Some(base), Some(lift)) => format!(
            "{}: lift {}, wake {} ({} of {}), before {}",
            slot.slot,
            points(lift),
            percent(rate),
            slot.woke,
            slot.active,
            percent(base)
        ),
        _ => format!("{}: no active users that day", slot.slot),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(escape("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
