//! The sequential answer of every call of a program, and a program's
//! description for failure reports.

use crate::gen::{fold_term, item_value, Expect, Fault, Kind, Node, Program, ORPHAN_POOL};
use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

/// The expected outcome of item `i` of `node`.
///
/// An input whose drop panics is dropped by `f` before the item runs; a
/// captured value whose drop panics fails the item once it has returned
/// (and is dropped quietly if the item fails: see `exec::with_capture`).
pub fn item_expect(nodes: &[Node], node: &Node, i: usize, memo: &mut [Option<Expect>]) -> Expect {
    let item = &node.items[i];
    if let Some(bomb) = item.input_bomb {
        return Expect::Fail(BTreeSet::from([bomb.code]));
    }
    let child = match item.child {
        Some(child) => match expect(nodes, child, memo) {
            Expect::Ok(value) => value,
            failure => return failure,
        },
        None => 0,
    };
    match item.fault.or(item.capture_bomb) {
        Some(fault) => Expect::Fail(BTreeSet::from([fault.code])),
        None => Expect::Ok(item_value(node, i, child)),
    }
}

/// The codes item `i` of node `id` may fail with (none if it succeeds).
pub fn item_failures(program: &Program, id: usize, i: usize) -> BTreeSet<u64> {
    let node = &program.nodes[id];
    let item = &node.items[i];
    if let Some(bomb) = item.input_bomb {
        return BTreeSet::from([bomb.code]);
    }
    if let Some(Expect::Fail(codes)) = item.child.map(|child| &program.expect[child]) {
        return codes.clone();
    }
    item.fault
        .or(item.capture_bomb)
        .map(|fault| fault.code)
        .into_iter()
        .collect()
}

/// The codes a value left from item `i` of node `id` may panic with when
/// dropped: its result's, or (if it failed) the code after its payload's,
/// if that payload panics in its drop.
pub fn item_drop_codes(program: &Program, id: usize, i: usize) -> BTreeSet<u64> {
    let mut codes: BTreeSet<u64> = item_failures(program, id, i)
        .into_iter()
        .filter(|code| program.payload_bombs.contains(code))
        .map(|code| code + 1)
        .collect();
    codes.extend(program.nodes[id].items[i].result_bomb.map(|f| f.code));
    codes
}

/// The codes the drop of node `id`'s `imap` iterator may panic with: those
/// of the results and payloads it still holds, and of the input's payload.
pub fn stream_drop_codes(program: &Program, id: usize) -> BTreeSet<u64> {
    let node = &program.nodes[id];
    let mut codes: BTreeSet<u64> = (0..node.items.len())
        .flat_map(|i| item_drop_codes(program, id, i))
        .collect();
    codes.extend(node.input_fault.and_then(|(_, f)| f.payload_drop_code()));
    codes
}

/// The sequential answer of node `id`.
pub fn expect(nodes: &[Node], id: usize, memo: &mut [Option<Expect>]) -> Expect {
    if let Some(known) = &memo[id] {
        return known.clone();
    }
    let node = &nodes[id];
    let len = node.items.len();
    let items: Vec<Expect> = (0..len)
        .map(|i| item_expect(nodes, node, i, memo))
        .collect();
    let fold = |range: &mut dyn Iterator<Item = usize>| -> Expect {
        let mut sum = 0u64;
        for i in range {
            match &items[i] {
                Expect::Ok(value) => sum = sum.wrapping_add(fold_term(node, i, *value)),
                failure => return failure.clone(),
            }
        }
        Expect::Ok(sum)
    };
    let union = |range: std::ops::Range<usize>, extra: Option<Fault>| -> Expect {
        let mut codes: BTreeSet<u64> = extra.map(|f| f.code).into_iter().collect();
        for item in &items[range.clone()] {
            if let Expect::Fail(set) = item {
                codes.extend(set);
            }
        }
        if codes.is_empty() {
            fold(&mut range.into_iter())
        } else {
            Expect::Fail(codes)
        }
    };
    let answer = match node.kind {
        Kind::Map | Kind::MapChunked | Kind::ForEach => union(0..len, None),
        // A failed call drops the results it made, one at a time, and
        // raises the first panic of their drops unless `f` panicked: with
        // an error, one of them may come instead.
        Kind::TryMap => match union(0..len, None) {
            Expect::Fail(mut codes) => {
                codes.extend(
                    node.items
                        .iter()
                        .filter_map(|it| it.result_bomb.map(|f| f.code)),
                );
                Expect::Fail(codes)
            }
            answer => answer,
        },
        // Every call of `init` panics, so no item runs; otherwise at least
        // one state is made, whose drop's panic is the call's if it comes
        // first.
        Kind::MapInit => match node.init_fault {
            Some(fault) if len > 0 => Expect::Fail(BTreeSet::from([fault.code])),
            _ if len > 0 => union(0..len, node.state_bomb),
            _ => union(0..len, None),
        },
        // Every task runs, whatever panics; the body panics after spawning.
        Kind::Scope => union(0..len, node.body_fault),
        // `a`'s panic wins, and `b` runs only after `a`: in order.
        Kind::Apply | Kind::Join | Kind::InWorker | Kind::WorkerJoin => fold(&mut (0..len)),
        // Tasks are joined in order; detached ones are not looked at.
        Kind::Spawn => fold(&mut (0..len).filter(|&i| !node.items[i].detach)),
        Kind::Imap => {
            let available = node.available();
            let take = node.take.unwrap_or(usize::MAX);
            match fold(&mut (0..available.min(take))) {
                Expect::Ok(_) if take > available && node.input_fault.is_some() => {
                    let (_, fault) = node.input_fault.expect("checked");
                    Expect::Fail(BTreeSet::from([fault.code]))
                }
                answer => answer,
            }
        }
        Kind::ImapUnordered if node.take == Some(0) => Expect::Ok(0),
        // The input's panic comes once every item before it was returned,
        // so an item's failure comes first.
        Kind::ImapUnordered => match union(0..node.available(), None) {
            Expect::Ok(_) if node.input_fault.is_some() => {
                let (_, fault) = node.input_fault.expect("checked");
                Expect::Fail(BTreeSet::from([fault.code]))
            }
            answer => answer,
        },
    };
    memo[id] = Some(answer.clone());
    answer
}

impl fmt::Display for Program {
    /// One line per node, indented by depth, for a failure report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "program of seed {}: pools {:?}", self.seed, self.pools)?;
        let mut line = String::new();
        let mut show = |f: &mut fmt::Formatter<'_>, id: usize, indent: usize| -> fmt::Result {
            let node = &self.nodes[id];
            line.clear();
            let pool = if node.pool == ORPHAN_POOL {
                "orphan".to_owned()
            } else {
                node.pool.to_string()
            };
            write!(
                line,
                "{:indent$}#{id} {:?} pool {pool} len {}",
                "",
                node.kind,
                node.items.len()
            )?;
            for (i, item) in node.items.iter().enumerate() {
                if let Some(child) = item.child {
                    write!(line, " [{i}]->#{child}")?;
                }
                for fault in [
                    item.fault,
                    item.result_bomb,
                    item.capture_bomb,
                    item.input_bomb,
                ]
                .into_iter()
                .flatten()
                {
                    write!(line, " [{i}]!{:?}/{}", fault.site, fault.code)?;
                    if fault.payload_bomb {
                        write!(line, "+drop/{}", fault.code + 1)?;
                    }
                }
            }
            for (name, fault) in [
                ("init", node.init_fault),
                ("body", node.body_fault),
                ("state-drop", node.state_bomb),
            ] {
                if let Some(fault) = fault {
                    write!(line, " {name}!{}", fault.code)?;
                    if fault.payload_bomb {
                        write!(line, "+drop/{}", fault.code + 1)?;
                    }
                }
            }
            if let Some((at, fault)) = node.input_fault {
                write!(line, " input[{at}]!{}", fault.code)?;
                if fault.payload_bomb {
                    write!(line, "+drop/{}", fault.code + 1)?;
                }
            }
            if node.kind == Kind::MapChunked {
                write!(line, " chunk {}", node.chunk)?;
            }
            if let Some(take) = node.take {
                write!(line, " take {take}")?;
            }
            if let Some(window) = node.window {
                write!(line, " window {window}")?;
            }
            if node.rendezvous {
                write!(line, " rendezvous")?;
            }
            if node.locked {
                write!(line, " locked")?;
            }
            if node.via_handle {
                write!(line, " via handle")?;
            }
            writeln!(f, "{line} => {:?}", self.expect[id])
        };
        fn walk(
            program: &Program,
            f: &mut fmt::Formatter<'_>,
            id: usize,
            indent: usize,
            show: &mut dyn FnMut(&mut fmt::Formatter<'_>, usize, usize) -> fmt::Result,
        ) -> fmt::Result {
            show(f, id, indent)?;
            for item in &program.nodes[id].items {
                if let Some(child) = item.child {
                    walk(program, f, child, indent + 2, show)?;
                }
            }
            Ok(())
        }
        for (caller, roots) in self.callers.iter().enumerate() {
            writeln!(f, "caller {caller}:")?;
            for &root in roots {
                walk(self, f, root, 2, &mut show)?;
            }
        }
        if let Some(orphan) = &self.orphan {
            writeln!(
                f,
                "orphan: {} threads, drop {:?}, holder waits {} us",
                orphan.threads, orphan.drop, orphan.holder_delay_us
            )?;
            walk(self, f, orphan.tasks, 2, &mut show)?;
            if let Some(imap) = orphan.imap {
                walk(self, f, imap, 2, &mut show)?;
            }
        }
        Ok(())
    }
}
