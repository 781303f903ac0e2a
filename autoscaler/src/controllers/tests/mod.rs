//! Each controller's own tests, against a scripted API server (and fake-ec2 in-process where the
//! cloud is part of what it does): the objects it writes, asserted request by request.
//! `support` holds what they share.

mod disruption;
mod garbage_collection;
mod instance_status;
mod interruption;
mod nodeclaim;
mod nodeclass;
mod nodepool;
mod provisioner;
mod support;
mod termination;
