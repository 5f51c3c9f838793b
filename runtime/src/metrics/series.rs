//! [`series!`](crate::series): a struct of metric series, each declared once (its Prometheus
//! name, its help, its type, how it is made) and registered by the `register` function the
//! macro writes. The help is the field's doc comment, so the documentation and `/metrics` say
//! the same thing.

/// Declares a struct whose fields are series and the function that registers them:
///
/// ```text
/// series! {
///     /// The struct's doc.
///     pub struct Name {
///         /// Help of the series, also the field's doc.
///         pub field: Counter = Counter::default() => "weir_name",
///         ..
///     }
///     unexported |registry| {
///         other: Type = expression,
///     }
/// }
/// ```
///
/// `Name::register(&mut registry)` makes each series, registers it under its name (counters
/// get Prometheus's `_total` suffix when exported) and returns the struct; the `unexported`
/// fields (optional) are made from their expressions, which may use the registry (named
/// between the bars) for series of their own.
#[macro_export]
macro_rules! series {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $help:literal])+
                $fvis:vis $field:ident: $ty:ty = $init:expr => $metric:literal,
            )*
        }
        $(unexported |$reg:ident| {
            $( $(#[doc = $xdoc:literal])* $xvis:vis $xfield:ident: $xty:ty = $xinit:expr, )*
        })?
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                $(#[doc = $help])+
                #[doc = concat!("\n\nExported as `", $metric, "`.")]
                $fvis $field: $ty,
            )*
            $($( $(#[doc = $xdoc])* $xvis $xfield: $xty, )*)?
        }

        impl $name {
            /// Every series, made and registered in `registry` under its name.
            pub fn register(registry: &mut prometheus_client::registry::Registry) -> Self {
                $(
                    let $field: $ty = $init;
                    registry.register($metric, $crate::metrics::series::help(concat!($($help),+)), $field.clone());
                )*
                $(let $reg: &mut prometheus_client::registry::Registry = registry;)?
                Self { $($field,)* $($( $xfield: $xinit, )*)? }
            }
        }
    };
}

/// A doc comment as help text: one line, without the leading spaces of each doc line, and
/// without its full stop (prometheus-client adds one).
pub fn help(doc: &str) -> String {
    let text = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    text.strip_suffix('.').map(str::to_string).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    crate::series! {
        /// Two series to show.
        struct Shown {
            /// Things that happened, counted over
            /// two lines of doc.
            happened: Counter = Counter::default() => "test_happened",
            /// How many there are now.
            now: Gauge = Gauge::default() => "test_now",
        }
        unexported |_registry| {
            note: &'static str = "not a series",
        }
    }

    #[test]
    fn each_series_is_exported_under_its_name_with_its_doc_as_help() {
        let mut registry = Registry::default();
        let shown = Shown::register(&mut registry);
        shown.happened.inc_by(3);
        shown.now.set(7);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        assert!(
            text.contains("# HELP test_happened Things that happened, counted over two lines of doc.\n"),
            "{text}"
        );
        assert!(text.contains("test_happened_total 3\n"), "{text}");
        assert!(text.contains("# HELP test_now How many there are now.\n"), "{text}");
        assert!(text.contains("test_now 7\n"), "{text}");
        assert_eq!(shown.note, "not a series");
    }
}
