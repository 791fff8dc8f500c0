//! Integration tests: data (one binary; each file a module).

mod limits;
mod proptest_parse;
mod test_data;
