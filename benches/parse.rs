//! Parse throughput per provider over its recorded success fixtures:
//! `cargo bench --bench parse` (or `tools/bench-parse`) reports time per
//! response and bytes per second for each provider.

use std::path::Path;

use divan::counter::BytesCount;
use quotatrack::exchange::RecordedExchange;
use quotatrack::providers::{ProviderId, Response};

fn main() {
    divan::main();
}

/// One recorded success: body, headers and the clock it was recorded at.
type Recorded = (Vec<u8>, Vec<(String, String)>, jiff::Timestamp);

/// The successes among one provider's fixtures.
fn bodies(provider: ProviderId) -> Vec<Recorded> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/providers")
        .join(provider.as_str());
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ok-"))
        .map(|path| {
            let exchange: RecordedExchange = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let response = exchange.response;
            (response.body_bytes(), response.header_pairs(), exchange.recorded_at)
        })
        .collect()
}

#[divan::bench(args = ProviderId::ALL)]
fn parse(bencher: divan::Bencher, provider: ProviderId) {
    let bodies = bodies(provider);
    let bytes: usize = bodies.iter().map(|(b, _, _)| b.len()).sum();
    bencher.counter(BytesCount::new(bytes)).bench(|| {
        for (body, headers, now) in &bodies {
            let response = Response {
                status: 200,
                headers,
                body,
            };
            divan::black_box(provider.provider().parse(&response, *now).unwrap());
        }
    });
}
