//! Training the late-payment risk model (smartcore): logistic regression and
//! random forest, selection by validation log-loss, Platt calibration, and
//! the reproducible evaluation on IBM's public sample. Only what trains
//! links this crate (`collect train`, the train Lambda); scoring with a
//! trained model is `collect-model`'s.
//!
//! - `train`: fitting, selection and calibration;
//! - `ibm`: the evaluation on IBM's public late-payment sample.

pub mod ibm;
pub mod train;
