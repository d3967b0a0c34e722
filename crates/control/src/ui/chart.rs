//! Line charts drawn as SVG on the server: no script, readable by screen readers through
//! their title and description, with the numbers in a table beside them.

use maud::{Markup, PreEscaped, html};

/// One line of a chart.
pub(crate) struct Series {
    /// Legend text.
    pub name: &'static str,
    /// CSS class giving its colour.
    pub class: &'static str,
    /// The value at each point of the x axis (`None`: no data there).
    pub values: Vec<Option<f64>>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// A chart `id` titled `title`, y from 0 to `y_max` labelled by `label`, x labelled at
/// both ends by `x_ends`, with `description` said to screen readers.
pub(crate) fn lines(
    id: &str,
    title: &str,
    description: &str,
    series: &[Series],
    y_max: f64,
    label: impl Fn(f64) -> String,
    x_ends: (&str, &str),
) -> Markup {
    let points = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let x =
        |i: usize| LEFT + if points > 1 { i as f64 * (WIDTH - LEFT - RIGHT) / (points - 1) as f64 } else { (WIDTH - LEFT - RIGHT) / 2.0 };
    let y_max = if y_max > 0.0 { y_max } else { 1.0 };
    let y = |v: f64| TOP + (1.0 - v / y_max) * (HEIGHT - TOP - BOTTOM);
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby={ (id) "-title " (id) "-desc" } {
                title id={ (id) "-title" } { (title) }
                desc id={ (id) "-desc" } { (description) }
                @for step in [0.0, 0.5, 1.0] {
                    @let at = y(y_max * step);
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(at) y2=(at) {}
                    text.axis x=(LEFT - 6.0) y=(at + 4.0) text-anchor="end" { (label(y_max * step)) }
                }
                text.axis x=(LEFT) y=(HEIGHT - 8.0) { (x_ends.0) }
                text.axis x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (x_ends.1) }
                text.axis.title x=((LEFT + WIDTH - RIGHT) / 2.0) y=(HEIGHT - 8.0) text-anchor="middle" { "time (UTC)" }
                @for s in series {
                    @let path = path(&s.values, &x, &y);
                    path class={ "series " (s.class) } d=(PreEscaped(path)) {}
                    @for (i, v) in s.values.iter().enumerate() {
                        @if let Some(v) = v { circle class={ "dot " (s.class) } cx=(x(i)) cy=(y(*v)) r="2.5" {} }
                    }
                }
            }
            figcaption {
                (title) ": "
                @for s in series { span class={ "key " (s.class) } { (s.name) } " " }
            }
        }
    }
}

/// An SVG path through the points that have values, broken where one is missing.
fn path(values: &[Option<f64>], x: &impl Fn(usize) -> f64, y: &impl Fn(f64) -> f64) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                d.push_str(&format!("{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x(i), y(*v)));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_break_at_gaps_and_scale_to_the_frame() {
        let x = |i: usize| i as f64 * 10.0;
        let y = |v: f64| 100.0 - v;
        assert_eq!(path(&[Some(1.0), Some(2.0), None, Some(4.0)], &x, &y), "M0.0,99.0 L10.0,98.0 M30.0,96.0 ");
    }

    #[test]
    fn a_chart_has_its_title_description_and_a_line_per_series() {
        let series = [Series { name: "p50", class: "p50", values: vec![Some(1.0), Some(3.0)] }];
        let svg = lines("lat", "Latency", "p50 from 1 to 3 ms", &series, 4.0, |v| format!("{v} ms"), ("a", "b")).into_string();
        assert!(svg.contains(r#"<title id="lat-title">Latency</title>"#), "{svg}");
        assert!(svg.contains(r#"<desc id="lat-desc">p50 from 1 to 3 ms</desc>"#), "{svg}");
        assert_eq!(svg.matches("<path").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">4 ms</text>"), "{svg}");
    }
}
