//! SQS errors as both protocols carry them.
//!
//! Every error has two names: the smithy shape name (`QueueDoesNotExist`), which the JSON protocol
//! puts in `__type`, and the legacy Query code (`AWS.SimpleQueueService.NonExistentQueue`), which
//! the Query protocol puts in `<Code>` and the JSON protocol repeats in the `x-amzn-query-error`
//! header (the service model is `awsQueryCompatible`). Codes and HTTP statuses are the
//! `aws.protocols#awsQueryError` traits of the SQS smithy model (api-models-aws
//! `sqs-2012-11-05.json`); errors that the model does not declare (`InvalidParameterValue`,
//! `MissingParameter`, ...) use one name for both, as SQS does.

/// An SQS error: shape name, legacy code, HTTP status and message. Always the sender's fault
/// except for `InternalError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SqsError {
    /// The smithy shape name, used in the JSON `__type`.
    pub shape: &'static str,
    /// The legacy Query code (`<Code>`, `x-amzn-query-error`, batch `Failed[].Code`).
    pub code: &'static str,
    pub status: u16,
    pub message: String,
    pub sender_fault: bool,
}

pub type SqsResult<T> = Result<T, SqsError>;

impl SqsError {
    fn new(shape: &'static str, code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self { shape, code, status, message: message.into(), sender_fault: true }
    }

    /// `Sender` or `Receiver`, as the Query `<Type>` and the `x-amzn-query-error` header say.
    pub fn fault(&self) -> &'static str {
        if self.sender_fault { "Sender" } else { "Receiver" }
    }

    pub fn queue_does_not_exist() -> Self {
        Self::new(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            400,
            "The specified queue does not exist.",
        )
    }

    pub fn queue_name_exists(message: impl Into<String>) -> Self {
        Self::new("QueueNameExists", "QueueAlreadyExists", 400, message)
    }

    pub fn queue_deleted_recently(name: &str) -> Self {
        Self::new(
            "QueueDeletedRecently",
            "AWS.SimpleQueueService.QueueDeletedRecently",
            400,
            format!(
                "You must wait 60 seconds after deleting a queue before you can create another with the same name. Queue: {name}"
            ),
        )
    }

    pub fn receipt_handle_invalid(handle: &str) -> Self {
        Self::new(
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            404,
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    }

    pub fn message_not_inflight() -> Self {
        Self::new(
            "MessageNotInflight",
            "AWS.SimpleQueueService.MessageNotInflight",
            400,
            "Message does not exist or is not available for visibility timeout change.",
        )
    }

    pub fn empty_batch(entry: &str) -> Self {
        Self::new(
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            400,
            format!("There should be at least one {entry} in the request."),
        )
    }

    pub fn too_many_entries(n: usize) -> Self {
        Self::new(
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            400,
            format!("Maximum number of entries per request are 10. You have sent {n}."),
        )
    }

    pub fn ids_not_distinct(id: &str) -> Self {
        Self::new(
            "BatchEntryIdsNotDistinct",
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            400,
            format!("Id {id} repeated."),
        )
    }

    pub fn invalid_batch_entry_id() -> Self {
        Self::new(
            "InvalidBatchEntryId",
            "AWS.SimpleQueueService.InvalidBatchEntryId",
            400,
            "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
        )
    }

    pub fn batch_too_long(max: usize, sent: usize) -> Self {
        Self::new(
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
            400,
            format!("Batch requests cannot be longer than {max} bytes. You have sent {sent} bytes."),
        )
    }

    pub fn purge_in_progress(arn: &str) -> Self {
        Self::new(
            "PurgeQueueInProgress",
            "AWS.SimpleQueueService.PurgeQueueInProgress",
            403,
            format!("Only one PurgeQueue operation on {arn} is allowed every 60 seconds."),
        )
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400, message)
    }

    pub fn invalid_attribute_name(name: &str) -> Self {
        Self::new("InvalidAttributeName", "InvalidAttributeName", 400, format!("Unknown Attribute {name}."))
    }

    pub fn invalid_attribute_value(name: &str) -> Self {
        Self::new(
            "InvalidAttributeValue",
            "InvalidAttributeValue",
            400,
            format!("Invalid value for the parameter {name}."),
        )
    }

    pub fn invalid_attribute_value_because(name: &str, reason: &str) -> Self {
        Self::new(
            "InvalidAttributeValue",
            "InvalidAttributeValue",
            400,
            format!("Invalid value for the parameter {name}. Reason: {reason}"),
        )
    }

    pub fn invalid_message_contents(message: impl Into<String>) -> Self {
        Self::new("InvalidMessageContents", "InvalidMessageContents", 400, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", "InvalidParameterValue", 400, message)
    }

    /// `Value x for parameter P is invalid. Reason: ...`, SQS's usual wording.
    pub fn invalid_value(param: &str, value: impl std::fmt::Display, reason: &str) -> Self {
        Self::invalid_parameter(format!("Value {value} for parameter {param} is invalid. Reason: {reason}"))
    }

    pub fn missing(param: &str) -> Self {
        Self::new(
            "MissingParameter",
            "MissingParameter",
            400,
            format!("The request must contain the parameter {param}."),
        )
    }

    pub fn invalid_action(action: &str) -> Self {
        Self::new("InvalidAction", "InvalidAction", 400, format!("The action {action} is not valid for this endpoint."))
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new("SerializationException", "MalformedQueryString", 400, message)
    }

    /// An authentication failure found by the shared SigV4 check.
    pub fn auth(status: u16, code: &str, message: String) -> Self {
        let (shape, code): (&'static str, &'static str) = match code {
            "MissingAuthenticationToken" => ("MissingAuthenticationToken", "MissingAuthenticationToken"),
            "IncompleteSignature" => ("IncompleteSignature", "IncompleteSignature"),
            "RequestExpired" => ("RequestExpired", "RequestExpired"),
            _ => ("InvalidClientTokenId", "InvalidClientTokenId"),
        };
        let status = if status == 401 { 403 } else { status };
        Self::new(shape, code, status, message)
    }

    pub fn internal() -> Self {
        Self {
            shape: "InternalError",
            code: "InternalError",
            status: 500,
            message: "We encountered an internal error. Please try again.".into(),
            sender_fault: false,
        }
    }
}
