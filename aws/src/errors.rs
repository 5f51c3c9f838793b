//! What an SDK error says, and whether trying again may help: the one classification of
//! weir's AWS errors ([`Transient`]), implemented by the SDK's errors here and by each typed
//! error of weir's AWS paths (Kinesis, S3 objects, checkpoints, the lease table).

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Whether a failure may go away by itself: throttling, a busy or unreachable service. What
/// retrying cannot fix (denied, not found, a bad request, a local I/O error) is not transient,
/// and stops the work that hit it with the reason.
pub trait Transient {
    /// Whether trying again later may succeed.
    fn is_transient(&self) -> bool;
}

impl<E: ProvideErrorMetadata, R> Transient for SdkError<E, R> {
    fn is_transient(&self) -> bool {
        match self {
            SdkError::ServiceError(service) => service.err().code().is_some_and(is_transient_code),
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
            _ => false,
        }
    }
}

/// Whether a service's error code says the call may pass later: refused for throughput, or the
/// service was busy or failed inside. The one list, for the SDK's errors here and for weir's
/// errors that keep the code (`KinesisError::Refused`, `S3Error::Refused`).
pub fn is_transient_code(code: &str) -> bool {
    is_throttling(Some(code))
        || matches!(
            code,
            "InternalFailure"
                | "InternalError"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "RequestTimeout"
        )
}

/// Whether an error code says the call was refused for throughput.
pub fn is_throttling(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "ThrottlingException"
                | "KMSThrottlingException"
                | "RequestLimitExceeded"
                | "SlowDown"
        )
    )
}

/// The first error of type `T` in `error`'s chain of causes.
pub fn cause<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// An SDK error with its causes (the SDK's own `DisplayErrorContext`), on one line: the causes
/// name credential and connection problems, and an error message should be one line.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    one_line(&DisplayErrorContext(error).to_string())
}

/// The API operation an SDK error type belongs to: `GetRecords` for
/// `aws_sdk_kinesis::operation::get_records::GetRecordsError` (the SDK names each operation's
/// error `{Operation}Error`), so that an access-denied message can name the IAM action.
pub fn operation<E>() -> &'static str {
    let name = std::any::type_name::<E>();
    let last = name.rsplit("::").next().unwrap_or(name);
    last.strip_suffix("Error").unwrap_or(last)
}

/// `text` with every run of whitespace, line breaks included, made one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sdk_error_type_names_its_operation() {
        struct GetRecordsError;
        assert_eq!(operation::<GetRecordsError>(), "GetRecords");
        assert_eq!(operation::<std::io::Error>(), "");
    }

    #[test]
    fn text_on_several_lines_becomes_one_line() {
        assert_eq!(
            one_line("dispatch failure\n  caused by:\tconnection refused "),
            "dispatch failure caused by: connection refused"
        );
    }

    #[test]
    fn throughput_refusals_of_each_service_are_throttling_and_others_are_not() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "SlowDown",
            "RequestLimitExceeded",
        ] {
            assert!(is_throttling(Some(code)), "{code}");
        }
        for code in ["AccessDeniedException", "ResourceNotFoundException", "ConditionalCheckFailedException"]
        {
            assert!(!is_throttling(Some(code)), "{code}");
        }
        assert!(!is_throttling(None));
    }

    #[test]
    fn a_busy_or_throttled_service_may_pass_later_and_a_refusal_never() {
        for code in ["InternalFailure", "ServiceUnavailable", "InternalError", "RequestTimeout", "SlowDown"] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in ["AccessDenied", "NoSuchBucket", "ResourceNotFoundException", "ValidationException"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }
}
