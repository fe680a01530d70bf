//! Unit tests for the condition language.
