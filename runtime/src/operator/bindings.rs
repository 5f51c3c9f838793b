//! The host side of `wit/operator.wit`, generated once here; the rest of the host uses these
//! types through [`super::instance`].

wasmtime::component::bindgen!({
    path: "../wit",
    world: "operator-component",
});

pub use weir::operator::types as wit;
