// `export_map!` takes a function of a record and the output.
fn upper(data: &[u8]) -> Vec<u8> {
    data.to_ascii_uppercase()
}

weir_operator::export_map!(Upper, upper);

fn main() {}
