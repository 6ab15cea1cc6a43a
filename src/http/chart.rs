//! The admin page's picture of the last 24 hours, drawn server-side as SVG shapes (no script,
//! no inline style, so the CSP stays strict).

use serde::Serialize;

use crate::core::events::EventKind;
use crate::db::events::HourlyCount;

pub const HOURS: usize = 24;
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;
/// Room on the right for the last hour's label.
const RIGHT: f64 = 24.0;

/// The kinds drawn, with their legend names and colours (distinguishable in grey scale too:
/// each line also has its own dash pattern).
const SERIES: [(EventKind, &str, &str, &str); 3] = [
    (EventKind::LoginSucceeded, "Sign-ins", "#2453c7", ""),
    (EventKind::LoginFailed, "Failed sign-ins", "#c46a00", "6 3"),
    (
        EventKind::RefreshTokenReuse,
        "Reuse detections",
        "#b3261e",
        "2 3",
    ),
];

/// The kinds the chart draws, for the query that counts them.
pub const KINDS: [EventKind; 3] = [SERIES[0].0, SERIES[1].0, SERIES[2].0];

#[derive(Debug, Serialize)]
pub struct Series {
    pub name: &'static str,
    pub color: &'static str,
    pub dash: &'static str,
    pub points: String,
    pub counts: Vec<i64>,
    pub total: i64,
}

#[derive(Debug, Serialize)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub max: i64,
    pub series: Vec<Series>,
    /// Hour labels ("13:00") for the text table, oldest first.
    pub hours: Vec<String>,
    /// Axis ticks: (x, label) every six hours, and (y, label) for 0 and the maximum.
    pub x_ticks: Vec<(f64, String)>,
    pub y_ticks: Vec<(f64, i64)>,
    pub left: f64,
    pub right: f64,
    pub baseline: f64,
}

/// Builds the chart from hourly counts; hour 0 starts at `since` (an hour boundary).
pub fn hourly(counts: &[HourlyCount], since: i64) -> Chart {
    let mut table = [[0i64; HOURS]; 3];
    for count in counts {
        let (Some(row), Ok(hour)) = (
            SERIES.iter().position(|s| s.0.as_str() == count.kind),
            usize::try_from(count.hour),
        ) else {
            continue;
        };
        if hour < HOURS {
            table[row][hour] += count.n;
        }
    }
    let max = table.iter().flatten().copied().max().unwrap_or(0).max(1);
    let baseline = HEIGHT - BOTTOM;
    let step = (WIDTH - LEFT - RIGHT) / (HOURS - 1) as f64;
    let x = |hour: usize| LEFT + step * hour as f64;
    let y = |n: i64| baseline - (baseline - TOP) * n as f64 / max as f64;
    let series = SERIES
        .iter()
        .zip(table)
        .map(|(&(_, name, color, dash), counts)| Series {
            name,
            color,
            dash,
            points: counts
                .iter()
                .enumerate()
                .map(|(h, &n)| format!("{:.1},{:.1}", x(h), y(n)))
                .collect::<Vec<_>>()
                .join(" "),
            total: counts.iter().sum(),
            counts: counts.to_vec(),
        })
        .collect();
    let label = |hour: usize| {
        let at = since + 3600 * hour as i64;
        format!("{:02}:00", at.rem_euclid(86_400) / 3600)
    };
    Chart {
        width: WIDTH,
        height: HEIGHT,
        max,
        series,
        hours: (0..HOURS).map(label).collect(),
        x_ticks: (0..HOURS)
            .step_by(6)
            .chain([HOURS - 1])
            .map(|h| (x(h), label(h)))
            .collect(),
        y_ticks: vec![(y(0), 0), (y(max), max)],
        left: LEFT,
        right: WIDTH - RIGHT,
        baseline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_hour_and_series() {
        let counts = vec![
            HourlyCount {
                kind: "login_succeeded".into(),
                hour: 0,
                n: 3,
            },
            HourlyCount {
                kind: "login_failed".into(),
                hour: 23,
                n: 7,
            },
            HourlyCount {
                kind: "refresh_token_reuse".into(),
                hour: 5,
                n: 1,
            },
            HourlyCount {
                kind: "login_failed".into(),
                hour: 24,
                n: 99,
            },
        ];
        let chart = hourly(&counts, 0);
        assert_eq!(chart.max, 7);
        assert_eq!(chart.series[0].counts[0], 3);
        assert_eq!(chart.series[1].total, 7);
        assert_eq!(chart.series[2].counts[5], 1);
        assert_eq!(chart.hours[13], "13:00");
        assert_eq!(chart.series[1].points.split(' ').count(), HOURS);
    }
}
