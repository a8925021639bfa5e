//! Turns translation problems into Kubernetes Events on the object they are about: only the
//! Lease holder publishes, and only problems that are new since the last publication.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::watch;

use crate::generator::Published;
use crate::translate::{Problem, ProblemObject};

/// The problems not in `already` (pure; the caller remembers what it published).
pub fn new_problems<'a>(current: &'a [Problem], already: &BTreeSet<Problem>) -> Vec<&'a Problem> {
    current.iter().filter(|p| !already.contains(p)).collect()
}

fn reference(p: &Problem, published: &Published) -> ObjectReference {
    match &p.object {
        ProblemObject::Ingress(i) => {
            let key = crate::translate::ObjectKey::new(&i.namespace, &i.name);
            let uid = published.book.lock().ok().and_then(|book| book.uid(&key));
            ObjectReference {
                api_version: Some("networking.k8s.io/v1".into()),
                kind: Some("Ingress".into()),
                namespace: Some(i.namespace.to_string()),
                name: Some(i.name.to_string()),
                uid,
                ..Default::default()
            }
        }
        ProblemObject::IngressControllerSet { namespace, name } => ObjectReference {
            api_version: Some("sluice.dev/v1alpha1".into()),
            kind: Some("IngressControllerSet".into()),
            namespace: Some(namespace.clone()),
            name: Some(name.clone()),
            ..Default::default()
        },
    }
}

/// The Event's action: kube's `Recorder` folds Events with the same regarding object, reason
/// and action into one series that keeps the first note, so each distinct problem (field and
/// note) needs its own action, or an Ingress's second problem would never be shown. The API
/// server caps actions at 128 bytes.
pub fn action(field: &str, note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    note.hash(&mut hasher);
    let tag = format!(" #{:08x}", hasher.finish() as u32);
    let mut action = String::from("Translate ");
    for c in field.chars() {
        if action.len() + c.len_utf8() + tag.len() > 128 {
            break;
        }
        action.push(c);
    }
    action.push_str(&tag);
    action
}

pub async fn run(
    client: kube::Client,
    instance: String,
    mut published: watch::Receiver<Arc<Published>>,
    mut leader: watch::Receiver<bool>,
) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "sluice-dataplane".into(),
            instance: Some(instance),
        },
    );
    let mut emitted: BTreeSet<Problem> = BTreeSet::new();
    loop {
        tokio::select! {
            r = published.changed() => if r.is_err() { return },
            r = leader.changed() => if r.is_err() { return },
        }
        if !*leader.borrow_and_update() {
            // A new leader re-announces what is still wrong.
            emitted.clear();
            continue;
        }
        let p = published.borrow_and_update().clone();
        for problem in new_problems(&p.problems, &emitted) {
            let note: String = problem.to_string().chars().take(1000).collect();
            let ev = Event {
                type_: EventType::Warning,
                reason: "Rejected".into(),
                action: action(&problem.field, &note),
                note: Some(note),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&ev, &reference(problem, &p)).await {
                tracing::warn!(error = %e, "publishing an Event failed");
            }
        }
        emitted = p.problems.iter().cloned().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::action;

    #[test]
    fn actions_differ_per_problem_and_fit_the_api_limit() {
        let a = action("metadata.annotations['x']", "one");
        let b = action("metadata.annotations['x']", "two");
        let c = action("metadata.annotations['y']", "one");
        assert!(
            a.starts_with("Translate metadata.annotations['x'] #"),
            "{a}"
        );
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, action("metadata.annotations['x']", "one"));
        let long = action(&"f".repeat(500), "note");
        assert!(long.len() <= 128, "{}", long.len());
    }
}
