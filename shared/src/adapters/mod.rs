//! Implementations of the ports: `embedded` (one redb file, the default on one
//! machine) and `aws` (DynamoDB and SQS).

#[cfg(feature = "aws")]
pub mod aws;
pub mod embedded;
