//! `kuryr controller` against the stack's real cluster and Neutron
//! (`scripts/stack up --k8s`): each test starts its own controller serving
//! only the namespaces it labels (`kuryr_testkit::k8s::ControllerWorld`), so
//! tests run in parallel and beside other users of the cluster. Without a
//! cluster in the stack every test prints a skip notice and passes.
//! docs/kubernetes.md § The controller.

mod controller;
