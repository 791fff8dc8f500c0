//! "Did you mean": the closest candidate by edit distance, as BuildKit's
//! `util/suggest` does (Levenshtein distance below 3, exact matches ignored).

/// The closest of `candidates` to `word`, if its edit distance is at most 2.
///
/// Ties go to the earliest candidate, so callers pass a fixed order and the
/// answer is deterministic. With `case_sensitive == false` the comparison
/// ignores case and the suggestion takes the casing of `word` when `word` is
/// all upper or all lower case (`runn` suggests `run`, `RUNN` suggests `RUN`).
/// An exact match means the word was not misspelled: no suggestion.
pub fn did_you_mean(word: &str, candidates: &[&str], case_sensitive: bool) -> Option<String> {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let needle = fold(word);
    let mut best: Option<(usize, &str)> = None;
    for &candidate in candidates {
        let option = fold(candidate);
        if option == needle {
            return None;
        }
        let distance = levenshtein(&needle, &option);
        if distance < best.map_or(3, |(d, _)| d) {
            best = Some((distance, candidate));
        }
    }
    let (_, candidate) = best?;
    Some(if case_sensitive {
        candidate.to_string()
    } else {
        match_case(candidate, word)
    })
}

/// BuildKit's wording of a suggestion (`suggest.WrapError`), appended to
/// the message itself so that it reads `unknown flag: --mont (did you mean
/// mount?)` as users grep for; the help keeps our own wording.
pub(crate) fn buildkit_hint(best: &str) -> String {
    format!(" (did you mean {best}?)")
}

fn match_case(candidate: &str, original: &str) -> String {
    if original == original.to_lowercase() {
        candidate.to_lowercase()
    } else if original == original.to_uppercase() {
        candidate.to_uppercase()
    } else {
        candidate.to_string()
    }
}

/// Edit distance (insertions, deletions, substitutions) over characters.
/// Two rows of length `b + 1`: linear memory, `a * b` time; callers compare
/// short words (keywords, flag names), never whole lines.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("run", "run", 0),
            ("runn", "run", 1),
            ("kitten", "sitting", 3),
            ("chwon", "chown", 2),
            ("", "abc", 3),
            ("ünï", "uni", 2),
        ] {
            assert_eq!(levenshtein(a, b), d, "{a} vs {b}");
        }
    }

    #[test]
    fn suggestions() {
        let keywords = ["FROM", "RUN", "COPY", "CMD"];
        assert_eq!(
            did_you_mean("RUNN", &keywords, false).as_deref(),
            Some("RUN")
        );
        assert_eq!(
            did_you_mean("runn", &keywords, false).as_deref(),
            Some("run")
        );
        assert_eq!(
            did_you_mean("Copi", &keywords, false).as_deref(),
            Some("COPY")
        );
        assert_eq!(did_you_mean("run", &keywords, false), None, "exact match");
        assert_eq!(
            did_you_mean("WORKDIRECTORY", &keywords, false),
            None,
            "too far"
        );
        assert_eq!(
            did_you_mean("chwon", &["from", "chown", "chmod"], true).as_deref(),
            Some("chown")
        );
        assert_eq!(
            did_you_mean("Chown", &["chown"], true).as_deref(),
            Some("chown")
        );
    }
}
