//! Pod model.
