//! diff -> tar -> compress -> digests on a generated tree, beside
//! `tar -c DIR | gzip | sha256sum` (and pigz when installed).
//!
//! The tree is half random bytes, half text; its size is `BUILDR_BENCH_MB`
//! (default 512). It is generated once under the target dir and reused.
//! Run: `cargo bench -p buildr-oci --bench layer` (quick: `BUILDR_BENCH_MB=64`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use buildr_oci::{CompressOptions, Compression, Diff, DiffSource, LayerOptions};
use criterion::{Criterion, Throughput};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "layer", "digest", "overlay", "whiteout", "the", "of", "build", "cache", "manifest", "config",
    "run", "copy", "from", "stage", "image", "registry", "tar", "gzip", "index", "blob",
];

fn generate(root: &Path, total: u64) {
    let marker = root.join(".complete");
    if marker.exists() {
        return;
    }
    let _ = fs::remove_dir_all(root);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let half = total / 2;
    // Random half: 1-4 MiB files (compressed binaries, images).
    let mut written = 0;
    let mut i = 0;
    while written < half {
        let len = (((rng.next() % 4) + 1) << 20).min(half - written);
        let dir = root.join(format!("bin/{:02}", i % 16));
        fs::create_dir_all(&dir).unwrap();
        let mut data = vec![0u8; len as usize];
        for chunk in data.chunks_mut(8) {
            let v = rng.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        fs::write(dir.join(format!("blob{i}")), &data).unwrap();
        written += len;
        i += 1;
    }
    // Text half: 4-64 KiB source-like files.
    written = 0;
    i = 0;
    while written < half {
        let len = ((rng.next() % 60 + 4) << 10).min(half - written);
        let dir = root.join(format!("src/{:03}", i % 256));
        fs::create_dir_all(&dir).unwrap();
        let mut text = Vec::with_capacity(len as usize + 16);
        while (text.len() as u64) < len {
            text.extend_from_slice(WORDS[(rng.next() % WORDS.len() as u64) as usize].as_bytes());
            text.push(if rng.next().is_multiple_of(12) {
                b'\n'
            } else {
                b' '
            });
        }
        text.truncate(len as usize);
        fs::write(dir.join(format!("file{i}.txt")), &text).unwrap();
        written += len;
        i += 1;
    }
    fs::write(marker, b"").unwrap();
}

/// Counts bytes, keeps nothing.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn one_layer(empty: &Path, tree: &Path, compression: Compression) -> u64 {
    let diff = Diff::compute(DiffSource::Trees {
        lower: empty,
        upper: tree,
    })
    .unwrap();
    let opts = LayerOptions {
        compress: CompressOptions {
            compression,
            ..CompressOptions::default()
        },
        source_date_epoch: None,
    };
    let (digests, _) = diff.write_layer(Count(0), &opts).unwrap();
    digests.size
}

/// User + system CPU seconds of this process (all threads) so far.
fn cpu_secs() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that ends the command name; utime and stime are
    // the 12th and 13th of those, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn report(label: &str, wall: f64, cpu: f64, mb: f64, extra: &str) {
    println!(
        "{label:<34} {wall:7.2} s wall {:7.1} MB/s | {cpu:6.2} s cpu {:6.1} MB/cpu-s, {:.2} cores{extra}",
        mb / wall,
        mb / cpu,
        cpu / wall
    );
}

fn shell(label: &str, script: &str, mb: f64) {
    let start = Instant::now();
    // GNU time reports the CPU of `sh` and the pipeline it reaped.
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%U %S", "sh", "-c", script])
        .output()
        .unwrap();
    let wall = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let cpu: f64 = stderr
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    if out.status.success() {
        report(label, wall, cpu, mb, "");
    } else {
        println!("{label:<34} failed: {stderr}");
    }
}

fn main() {
    let mb: u64 = std::env::var("BUILDR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let base = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()));
    let tree = base.join(format!("bench-layer-tree-{mb}"));
    let empty = base.join("bench-layer-empty");
    fs::create_dir_all(&empty).unwrap();
    generate(&tree, mb << 20);
    let size_mb = mb as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "tree: {} ({mb} MiB, half random, half text), {cores} cores",
        tree.display()
    );

    for (label, c) in [
        ("buildr gzip (parallel members)", Compression::Gzip),
        ("buildr zstd (multithreaded)", Compression::Zstd),
        ("buildr none", Compression::None),
    ] {
        let (start, cpu0) = (Instant::now(), cpu_secs());
        let size = one_layer(&empty, &tree, c);
        let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_secs() - cpu0);
        let blob = format!(", blob {:.1} MiB", size as f64 / (1 << 20) as f64);
        report(label, wall, cpu, size_mb, &blob);
    }
    let dir = tree.display();
    shell(
        "tar -c | gzip | sha256sum",
        &format!("tar -C {dir} -c . | gzip | sha256sum"),
        size_mb,
    );
    if Command::new("sh")
        .args(["-c", "command -v pigz"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        shell(
            "tar -c | pigz | sha256sum",
            &format!("tar -C {dir} -c . | pigz | sha256sum"),
            size_mb,
        );
    } else {
        println!("pigz not installed: skipped");
    }

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let mut group = c.benchmark_group("layer");
    group.throughput(Throughput::Bytes(mb << 20));
    group.bench_function("diff_tar_gzip_digests", |b| {
        b.iter(|| one_layer(&empty, &tree, Compression::Gzip))
    });
    group.bench_function("diff_tar_zstd_digests", |b| {
        b.iter(|| one_layer(&empty, &tree, Compression::Zstd))
    });
    group.finish();
    c.final_summary();
}
