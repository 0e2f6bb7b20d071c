//! Latency-by-percentile plots as SVG, written by hand (a few dozen elements: a plotting crate
//! would bring a font stack and a raster backend for nothing). The x axis is HdrHistogram's:
//! log10 of 1/(1-p), labelled 0%, 90%, 99%, 99.9%, …; the y axis is the latency in ms, linear
//! or (`log_y`) logarithmic. One `<path class="curve">` per distribution, a legend with each
//! one's name and p50/p99/max.

use std::fmt::Write;
use std::path::Path;

use crate::hgrm::{self, Distribution};

/// Tableau's ten colours: distinct on screen and in print.
const COLOURS: [&str; 10] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const W: f64 = 960.0;
/// The plot area's height; the picture is taller by the title, the x axis' labels and the
/// legend (a line per curve, under the plot, where it hides nothing).
const PH: f64 = 460.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 56.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 64.0;
const LEGEND_ROW: f64 = 20.0;
/// The x axis goes at most this many decades (99.99999%).
const MAX_DECADES: f64 = 7.0;

/// A curve: its name and its points, (1/(1-p), latency in ms).
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub samples: u64,
}

impl Curve {
    /// The points of a distribution. The 100% row (1/(1-p) infinite) goes where N samples
    /// can reach: p = 1 - 1/N (or the last row's level, if that is further).
    pub fn new(label: &str, d: &Distribution) -> Curve {
        let n = d.samples().max(1) as f64;
        let mut points = Vec::with_capacity(d.rows.len());
        let mut far = 1.0f64;
        for r in &d.rows {
            if r.quantile < 1.0 {
                let x = 1.0 / (1.0 - r.quantile);
                far = far.max(x);
                points.push((x, r.value));
            } else {
                points.push((far.max(n).min(10f64.powf(MAX_DECADES)), r.value));
            }
        }
        Curve {
            label: label.to_string(),
            points,
            p50: d.value_at(0.5),
            p99: d.value_at(0.99),
            max: d.max.or(d.rows.last().map(|r| r.value)),
            samples: d.samples(),
        }
    }
}

/// Reads each `.hgrm` file and writes one plot of them all to `out`; the legend names each
/// curve by its file's stem.
pub fn plot_files(files: &[std::path::PathBuf], out: &Path, title: Option<&str>, log_y: bool) -> Result<(), String> {
    let mut curves = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let d = hgrm::parse(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        let label = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| f.display().to_string());
        curves.push(Curve::new(&label, &d));
    }
    let svg = svg(&curves, title.unwrap_or("Latency by percentile"), log_y);
    std::fs::write(out, svg).map_err(|e| format!("{}: {e}", out.display()))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The percentile at 10^k on the x axis: 0%, 90%, 99%, 99.9%, …
fn percentile_label(k: u32) -> String {
    match k {
        0 => "0%".into(),
        _ => format!("{:.*}%", (k as usize).saturating_sub(2), 100.0 - 100.0 / 10f64.powi(k as i32)),
    }
}

/// 1, 2, 5 × 10^k: the tick step for about `want` ticks up to `max`.
fn nice_step(max: f64, want: f64) -> f64 {
    let raw = max / want;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// A latency label: "0", "0.25", "12", "1500".
fn ms_label(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A value in ms for the legend, with its unit.
fn ms_text(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v < 1.0 => format!("{:.0} µs", v * 1000.0),
        Some(v) if v < 10.0 => format!("{v:.2} ms"),
        Some(v) if v < 1000.0 => format!("{v:.1} ms"),
        Some(v) => format!("{:.2} s", v / 1000.0),
    }
}

/// 1234567 → "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let head = digits.len() % 3;
    let mut out = digits[..head].to_string();
    for group in digits.as_bytes()[head..].chunks(3) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(std::str::from_utf8(group).unwrap_or(""));
    }
    out
}

/// The plot of `curves` as an SVG document.
pub fn svg(curves: &[Curve], title: &str, log_y: bool) -> String {
    let (pw, ph) = (W - LEFT - RIGHT, PH);
    let h = TOP + PH + BOTTOM + curves.len() as f64 * LEGEND_ROW + 16.0;
    let all = || curves.iter().flat_map(|c| c.points.iter());
    // x: whole decades, at least to 99%, as far as the furthest point.
    let far = all().map(|p| p.0).fold(1.0f64, f64::max);
    let decades = far.log10().ceil().clamp(2.0, MAX_DECADES);
    let px = |x: f64| LEFT + x.max(1.0).log10().min(decades) / decades * pw;
    // y: from 0 (or the lowest decade) to a round value over the highest point.
    let top = all().map(|p| p.1).fold(0.0f64, f64::max);
    let low = all().map(|p| p.1).filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min);
    let (y_ticks, y0, y1): (Vec<f64>, f64, f64) = if log_y {
        let a = if low.is_finite() { low.log10().floor() } else { -3.0 };
        let b = if top > 0.0 { top.log10().ceil().max(a + 1.0) } else { a + 1.0 };
        ((a as i32..=b as i32).map(|k| 10f64.powi(k)).collect(), a, b)
    } else {
        let step = nice_step(if top > 0.0 { top } else { 1.0 }, 6.0);
        let n = ((top / step).ceil() as usize).max(1);
        ((0..=n).map(|i| i as f64 * step).collect(), 0.0, n as f64 * step)
    };
    let py = |v: f64| {
        let f = if log_y { (v.max(10f64.powf(y0)).log10() - y0) / (y1 - y0) } else { (v - y0) / (y1 - y0) };
        TOP + ph - f.clamp(0.0, 1.0) * ph
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="32" text-anchor="middle" font-size="18" font-weight="bold">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    // grid and ticks
    let _ = writeln!(s, r##"<g stroke="#e3e3e3" stroke-width="1">"##);
    for k in 0..=decades as u32 {
        let x = px(10f64.powi(k as i32));
        let _ = writeln!(s, r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/>"#, TOP + ph);
    }
    for &v in &y_ticks {
        let y = py(v);
        let _ = writeln!(s, r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#, LEFT + pw);
    }
    let _ = writeln!(s, "</g>");
    // minor x ticks: 2..9 × 10^k
    let _ = writeln!(s, r##"<g stroke="#444" stroke-width="1">"##);
    for k in 0..decades as u32 {
        for m in 2..10 {
            let x = px(m as f64 * 10f64.powi(k as i32));
            let _ = writeln!(s, r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/>"#, TOP + ph, TOP + ph + 4.0);
        }
    }
    for k in 0..=decades as u32 {
        let x = px(10f64.powi(k as i32));
        let _ = writeln!(s, r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/>"#, TOP + ph, TOP + ph + 7.0);
    }
    for &v in &y_ticks {
        let y = py(v);
        let _ = writeln!(s, r#"<line x1="{:.1}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}"/>"#, LEFT - 6.0);
    }
    let _ = writeln!(s, "</g>");
    // axes
    let _ = writeln!(
        s,
        r##"<polyline points="{LEFT},{TOP} {LEFT},{b:.1} {r:.1},{b:.1}" fill="none" stroke="#222" stroke-width="1.5"/>"##,
        b = TOP + ph,
        r = LEFT + pw
    );
    for k in 0..=decades as u32 {
        let x = px(10f64.powi(k as i32));
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph + 22.0,
            percentile_label(k)
        );
    }
    for &v in &y_ticks {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 10.0,
            py(v) + 4.5,
            ms_label(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="14">percentile (log scale of 1/(1−p))</text>"#,
        LEFT + pw / 2.0,
        TOP + ph + 48.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(24 {:.1}) rotate(-90)" text-anchor="middle" font-size="14">latency (ms{})</text>"#,
        TOP + ph / 2.0,
        if log_y { ", log scale" } else { "" }
    );
    // curves
    for (i, c) in curves.iter().enumerate() {
        let mut d = String::new();
        for (j, &(x, v)) in c.points.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1} ", if j == 0 { 'M' } else { 'L' }, px(x), py(v));
        }
        let _ = writeln!(
            s,
            r#"<path class="curve" d="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"><title>{}</title></path>"#,
            d.trim_end(),
            COLOURS[i % COLOURS.len()],
            esc(&c.label)
        );
    }
    // legend, under the plot: a line per curve, its name (bold) and p50, p99, max
    for (i, c) in curves.iter().enumerate() {
        let y = TOP + ph + BOTTOM + 12.0 + i as f64 * LEGEND_ROW;
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            s,
            r#"<line class="legend" x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="3"/>"#,
            y - 4.5,
            LEFT + 28.0,
            y - 4.5
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{y:.1}"><tspan font-weight="bold">{}</tspan><tspan dx="10">p50 {}, p99 {}, max {}, {} samples</tspan></text>"#,
            LEFT + 38.0,
            esc(&c.label),
            ms_text(c.p50),
            ms_text(c.p99),
            ms_text(c.max),
            thousands(c.samples)
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::histogram;

    fn curve(label: &str, scale: u64, n: u64) -> Curve {
        let mut h = histogram();
        for v in 1..=n {
            h.record(v * scale).unwrap();
        }
        Curve::new(label, &hgrm::parse(&hgrm::write(&h)).unwrap())
    }

    /// A minimal check of well-formedness: every tag closes, in order, attributes quoted.
    fn well_formed(s: &str) -> Result<usize, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut elements = 0;
        let mut rest = s;
        while let Some(i) = rest.find('<') {
            let j = rest[i..].find('>').ok_or("unclosed <")? + i;
            let tag = &rest[i + 1..j];
            if !tag.matches('"').count().is_multiple_of(2) {
                return Err(format!("unbalanced quotes in <{tag}>"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or(format!("</{name}> without an opening tag"))?;
                if open != name {
                    return Err(format!("<{open}> closed by </{name}>"));
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
                elements += 1;
            } else {
                elements += 1;
            }
            let text = &rest[j + 1..rest[j + 1..].find('<').map_or(rest.len(), |k| k + j + 1)];
            if text.contains('&') && !text.contains("&amp;") && !text.contains("&lt;") && !text.contains("&gt;") {
                return Err(format!("unescaped & in {text:?}"));
            }
            rest = &rest[j + 1..];
        }
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        Ok(elements)
    }

    #[test]
    fn one_path_per_curve_and_well_formed() {
        let curves = vec![curve("rustircd", 10, 10_000), curve("hybrid", 30, 5_000), curve("a<b&c", 1, 3)];
        let s = svg(&curves, "fan-out & more", false);
        assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(s.trim_end().ends_with("</svg>"));
        well_formed(&s).unwrap_or_else(|e| panic!("{e}\n{s}"));
        assert_eq!(s.matches("<path ").count(), 3);
        assert_eq!(s.matches("class=\"curve\"").count(), 3);
        assert!(s.contains("rustircd") && s.contains("hybrid") && s.contains("a&lt;b&amp;c"));
        assert!(s.contains("fan-out &amp; more"));
        for label in ["0%", "90%", "99%", "99.9%", "99.99%"] {
            assert!(s.contains(&format!(">{label}</text>")), "{label} missing");
        }
        assert!(s.contains("latency (ms)"));
        // every coordinate inside the picture
        for d in s.split("d=\"").skip(1).map(|r| &r[..r.find('"').unwrap()]) {
            for xy in d.split(' ') {
                let (x, y) = xy[1..].split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(
                    (LEFT - 0.1..=W - RIGHT + 0.1).contains(&x) && (TOP - 0.1..=TOP + PH + 0.1).contains(&y),
                    "{xy}"
                );
            }
        }
        let log = svg(&curves, "log", true);
        well_formed(&log).unwrap();
        assert_eq!(log.matches("<path ").count(), 3);
    }

    #[test]
    fn curves_end_where_their_samples_reach() {
        // 3 samples: the max sits near 1/(1-p) = 3, not at the axis' end
        let c = curve("few", 1000, 3);
        let end = c.points.last().unwrap().0;
        assert!((3.0..5.0).contains(&end), "{end}");
        let c = curve("many", 1, 100_000);
        assert!(c.points.last().unwrap().0 >= 100_000.0);
        assert!(c.points.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
    }

    #[test]
    fn labels() {
        assert_eq!(percentile_label(0), "0%");
        assert_eq!(percentile_label(1), "90%");
        assert_eq!(percentile_label(2), "99%");
        assert_eq!(percentile_label(3), "99.9%");
        assert_eq!(percentile_label(5), "99.999%");
        assert_eq!(ms_label(0.25), "0.25");
        assert_eq!(ms_label(20.0), "20");
        assert_eq!(ms_label(0.0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(100), "100");
        assert_eq!(nice_step(9.3, 6.0), 2.0);
        assert_eq!(nice_step(0.8, 6.0), 0.2);
    }

    #[test]
    fn files_in_one_plot() {
        let dir = std::env::temp_dir().join(format!("lt-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = histogram();
        h.record_n(500, 10).unwrap();
        let (a, b) = (dir.join("rustircd.hgrm"), dir.join("hybrid.hgrm"));
        std::fs::write(&a, hgrm::write(&h)).unwrap();
        std::fs::write(&b, hgrm::write(&h)).unwrap();
        let out = dir.join("cmp.svg");
        plot_files(&[a, b.clone()], &out, None, false).unwrap();
        let s = std::fs::read_to_string(&out).unwrap();
        assert_eq!(s.matches("<path ").count(), 2);
        assert!(s.contains("<title>rustircd</title>") && s.contains("<title>hybrid</title>"));
        std::fs::write(&b, "not a distribution").unwrap();
        let e = plot_files(&[b], &out, None, false).unwrap_err();
        assert!(e.contains("hybrid.hgrm"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
