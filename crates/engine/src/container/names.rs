//! Names for unnamed containers, docker-like: an adjective and the surname
//! of a scientist or engineer (`brave_lovelace`). Our own lists; the pick
//! comes from the container's random id, so it is as random as the id.

const ADJECTIVES: [&str; 48] = [
    "agile",
    "amazing",
    "bold",
    "brave",
    "bright",
    "busy",
    "calm",
    "careful",
    "clever",
    "cool",
    "curious",
    "daring",
    "eager",
    "elegant",
    "epic",
    "fair",
    "fervent",
    "focused",
    "gentle",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "lucky",
    "merry",
    "modest",
    "nifty",
    "noble",
    "patient",
    "peaceful",
    "practical",
    "proud",
    "quick",
    "quiet",
    "relaxed",
    "serene",
    "sharp",
    "silly",
    "steady",
    "sweet",
    "tender",
    "tidy",
    "upbeat",
    "vivid",
    "wise",
    "zealous",
];

const SURNAMES: [&str; 48] = [
    "agnesi",
    "babbage",
    "bardeen",
    "bohr",
    "boole",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "germain",
    "hamilton",
    "hawking",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamarr",
    "lamport",
    "liskov",
    "lovelace",
    "maxwell",
    "meitner",
    "mendel",
    "newton",
    "noether",
    "pascal",
    "pasteur",
    "planck",
    "ritchie",
    "shannon",
    "somerville",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wozniak",
    "yalow",
    "ride",
];

/// A free name for the container whose id (hex) is `id`: the two words its
/// first bytes pick, with a number after them when `taken` says the plain
/// one is in use.
pub(super) fn generate(id: &str, taken: impl Fn(&str) -> bool) -> String {
    let byte = |at: usize| {
        id.get(at..at + 4)
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    let base = format!(
        "{}_{}",
        ADJECTIVES[byte(0) % ADJECTIVES.len()],
        SURNAMES[byte(4) % SURNAMES.len()]
    );
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|n| format!("{base}{n}"))
        .find(|name| !taken(name))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_words_from_the_id_and_a_number_when_taken() {
        let name = generate("0001000200000000", |_| false);
        assert_eq!(name, format!("{}_{}", ADJECTIVES[1], SURNAMES[2]));
        let again = generate("0001000200000000", |n| n == name || n == format!("{name}1"));
        assert_eq!(again, format!("{name}2"));
        for id in ["", "zz", "ffffffffffffffff"] {
            let name = generate(id, |_| false);
            let (a, s) = name.split_once('_').unwrap();
            assert!(ADJECTIVES.contains(&a) && SURNAMES.contains(&s), "{name}");
        }
        // Every name is a valid container name.
        for a in ADJECTIVES {
            for s in SURNAMES {
                let name = format!("{a}_{s}");
                assert!(super::super::valid_container_name(&name), "{name}");
            }
        }
    }
}
