//! Misuse of the export macros is a compile error with a message that says what to do, also in
//! a native build (`cargo test`), not only when building for wasm.

#[test]
fn exporting_what_is_not_an_operator_does_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
