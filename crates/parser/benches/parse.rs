//! Parse throughput on a generated, realistic 2,000-line Dockerfile:
//! stages, continuations, heredocs, flags, ENV/LABEL pairs and comments.
//! `parse` is the full pipeline; `parse_ast` stops before typing; `expand`
//! expands every word of the raw tree.
//!
//!     cargo bench -p buildr-parser --bench parse -- --warm-up-time 1 --measurement-time 5

use std::fmt::Write;
use std::hint::black_box;

use buildr_parser::{Args, Lexer, Node, parse, parse_ast};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LINES: usize = 2_000;

/// A Dockerfile of exactly `lines` physical lines, built from the kinds of
/// stages real projects have.
fn dockerfile(lines: usize) -> String {
    let mut out = String::from(
        "# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm-slim\nARG VERSION=1.2.3\n",
    );
    let mut stage = 0;
    while out.lines().count() + 40 < lines {
        let _ = write!(
            out,
            "\n# stage {stage}: build a component\n\
             FROM --platform=$BUILDPLATFORM ${{BASE}} AS build{stage}\n\
             ARG VERSION\n\
             ARG TARGETARCH\n\
             ENV DEBIAN_FRONTEND=noninteractive \\\n    PATH=/opt/app{stage}/bin:$PATH \\\n    APP_HOME=\"/opt/app {stage}\"\n\
             LABEL org.opencontainers.image.version=\"${{VERSION}}\" maintainer=\"dev{stage}@example.com\"\n\
             WORKDIR /src/component{stage}\n\
             RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n    --mount=type=cache,target=/var/lib/apt \\\n    apt-get update \\\n    && apt-get install -y --no-install-recommends \\\n        ca-certificates curl git build-essential \\\n    && rm -rf /var/lib/apt/lists/*\n\
             COPY --link --chown=1000:1000 go.mod go.sum ./\n\
             RUN --mount=type=cache,target=/root/.cache/go-build go mod download\n\
             COPY . .\n\
             RUN <<EOF\nset -eux\necho building {stage} for $TARGETARCH\nmake -j4 VERSION=${{VERSION:-dev}} OUT=/out/app{stage}\nEOF\n\
             RUN [\"/bin/sh\", \"-c\", \"echo done > /out/done{stage}\"]\n\
             \n\
             FROM ${{BASE}} AS runtime{stage}\n\
             RUN groupadd -r app && useradd -r -g app app\n\
             COPY --from=build{stage} --chmod=755 /out/app{stage} /usr/local/bin/app{stage}\n\
             COPY <<-EOT /etc/app{stage}.conf\n\tlisten = 0.0.0.0:80{stage:02}\n\tlog = info\n\tEOT\n\
             USER app:app\n\
             EXPOSE 80{stage:02}/tcp 90{stage:02}/udp\n\
             VOLUME [\"/data{stage}\"]\n\
             HEALTHCHECK --interval=30s --timeout=3s --retries=3 \\\n  CMD curl -fsS http://localhost:80{stage:02}/health || exit 1\n\
             STOPSIGNAL SIGTERM\n\
             ENTRYPOINT [\"/usr/local/bin/app{stage}\"]\n\
             CMD [\"--config\", \"/etc/app{stage}.conf\"]\n"
        );
        stage += 1;
    }
    while out.lines().count() < lines {
        out.push_str("RUN echo padding\n");
    }
    out
}

fn expand_node(lexer: &Lexer, node: &Node, env: &[(&str, &str)]) -> usize {
    let words: Vec<&str> = match &node.args {
        Args::Words { words, .. } => words.iter().map(String::as_str).collect(),
        Args::Pairs(pairs) => pairs.iter().filter_map(|p| p.value.as_deref()).collect(),
        Args::Nested(inner) => return expand_node(lexer, inner, env),
    };
    words
        .into_iter()
        .filter_map(|w| lexer.process_word(w, &env).ok())
        .map(|r| r.value.len())
        .sum()
}

fn bench(c: &mut Criterion) {
    let source = dockerfile(LINES);
    assert_eq!(source.lines().count(), LINES);
    let parsed = parse("Dockerfile", source.as_bytes()).expect("the generated Dockerfile parses");
    assert!(parsed.stages.len() > 50, "{} stages", parsed.stages.len());
    let ast = parse_ast("Dockerfile", source.as_bytes()).expect("the generated Dockerfile parses");
    let env = [
        ("BASE", "debian"),
        ("VERSION", "1.2.3"),
        ("PATH", "/usr/bin:/bin"),
        ("TARGETARCH", "amd64"),
    ];
    let lexer = Lexer::new(ast.directives.escape);

    let mut group = c.benchmark_group("dockerfile_2000_lines");
    group.throughput(Throughput::Bytes(source.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| parse("Dockerfile", black_box(source.as_bytes())))
    });
    group.bench_function("parse_ast", |b| {
        b.iter(|| parse_ast("Dockerfile", black_box(source.as_bytes())))
    });
    group.bench_function("expand", |b| {
        b.iter(|| {
            ast.nodes
                .iter()
                .map(|n| expand_node(&lexer, black_box(n), &env))
                .sum::<usize>()
        })
    });
    group.finish();
    eprintln!(
        "input: {LINES} lines, {} bytes, {} nodes",
        source.len(),
        ast.nodes.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
