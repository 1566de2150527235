//! The SVG chart of docs/BENCHMARKS.md: put_batch payload throughput by
//! record size, llmvault vs SQLCipher vs plain SQLite.

use std::path::Path;

use plotters::prelude::*;

use crate::Results;
use crate::peer::Plan;

const SERIES: [(&str, RGBColor); 3] = [
    ("llmvault", RGBColor(0x1f, 0x77, 0xb4)),
    ("SQLCipher", RGBColor(0xd6, 0x27, 0x28)),
    ("plain SQLite", RGBColor(0x7f, 0x7f, 0x7f)),
];

pub fn draw(path: &Path, plan: &Plan, results: &Results) -> Result<(), Box<dyn std::error::Error>> {
    let points = |side: &str| -> Vec<(f64, f64)> {
        plan.sizes
            .iter()
            .filter_map(|(len, _)| {
                let f = results.get(side)?.get(&format!("put_batch/{len}"))?;
                Some((*len as f64, f.value * *len as f64 / 1e6))
            })
            .collect()
    };
    let all: Vec<f64> = SERIES
        .iter()
        .flat_map(|(s, _)| points(s))
        .map(|p| p.1)
        .collect();
    let top = all.iter().copied().fold(1.0, f64::max) * 1.5;
    let bottom = all.iter().copied().fold(top, f64::min) / 1.5;
    let (lo, hi) = (
        plan.sizes[0].0 as f64 / 1.3,
        plan.sizes[plan.sizes.len() - 1].0 as f64 * 1.3,
    );

    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "put_batch ({} records per transaction, WAL, synchronous=FULL)",
                plan.batch
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), (bottom..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("record payload (bytes)")
        .y_desc("payload MB/s")
        .x_label_formatter(&|x| format!("{:.0}", x))
        .y_label_formatter(&|y| format!("{:.0}", y))
        .draw()?;
    for (side, color) in SERIES {
        let pts = points(side);
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(side)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
