// A type that does not implement `Operator` cannot be exported.
struct NotAnOperator;

weir_operator::export_operator!(NotAnOperator);

fn main() {}
