import Foundation
import Logging
import NIOCore
import OctopusRPC
import Synchronization

/// The master's messenger routing, on the event loop that reads a message (no actor hop): who serves each slot now,
/// who is ready, and the bounded queues of messages for slots whose process is not ready yet. The supervisor tells it
/// of every spawn, readiness and exit; it also keeps the membership every child is told of.
final class MessageRouter: Sendable {
    private struct Member {
        var identity: ProcessIdentity
        var slot: Supervisor.Slot
        var state: Member.State
        enum State: String { case starting, ready, stopping }
    }

    private struct State {
        var members: [Int32: Member] = [:]
        var current: [Supervisor.Slot: Int32] = [:]
        var queues: [Supervisor.Slot: [ByteBuffer]] = [:]
        var dropped: [Supervisor.Slot: Int] = [:]
        var droppedTotal = 0
        var version = 0
    }

    private let state = Mutex(State())
    private let rpc: RPCMaster
    private let limit: Int
    private let log: Logger

    init(rpc: RPCMaster, queueLimit: Int, log: Logger) {
        self.rpc = rpc
        self.limit = queueLimit
        self.log = log
    }

    // MARK: What the supervisor says

    func declare(_ slots: [Supervisor.Slot]) {
        state.withLock { state in
            for slot in slots where state.queues[slot] == nil { state.queues[slot] = [] }
        }
    }

    /// A child was spawned for `slot` and serves it from now on.
    func spawned(_ identity: ProcessIdentity, slot: Supervisor.Slot) {
        state.withLock { state in
            state.members[identity.pid] = Member(identity: identity, slot: slot, state: .starting)
            state.current[slot] = identity.pid
            state.version += 1
        }
    }

    /// The child is ready: what waited for its slot is delivered to it first, in order.
    func ready(_ pid: Int32) {
        let (delivered, dropped, name) = state.withLock { state -> (Int, Int, String) in
            guard var member = state.members[pid] else { return (0, 0, "") }
            member.state = .ready
            state.members[pid] = member
            state.version += 1
            guard state.current[member.slot] == pid, let queue = state.queues[member.slot], !queue.isEmpty else {
                return (0, 0, "")
            }
            state.queues[member.slot] = []
            let dropped = state.dropped.removeValue(forKey: member.slot) ?? 0
            // Sent under the lock: a message routed meanwhile cannot overtake the queue.
            for bytes in queue { try? rpc.send(ClusterMessage.deliver, body: bytes, to: member.identity.branchID) }
            return (queue.count, dropped, member.identity.description)
        }
        if dropped > 0 { log.warning("\(dropped) messenger message(s) for \(name) were dropped while it was not ready") }
        if delivered > 0 { log.info("delivered \(delivered) queued messenger message(s) to \(name)") }
    }

    /// The child is stopping; with `replaced`, its slot has no process until the replacement is spawned.
    func stopping(_ pid: Int32, vacate: Bool) {
        state.withLock { state in
            guard var member = state.members[pid] else { return }
            member.state = .stopping
            state.members[pid] = member
            if vacate, state.current[member.slot] == pid { state.current[member.slot] = nil }
            state.version += 1
        }
    }

    func exited(_ pid: Int32) {
        state.withLock { state in
            guard let member = state.members.removeValue(forKey: pid) else { return }
            if state.current[member.slot] == pid { state.current[member.slot] = nil }
            state.version += 1
        }
    }

    /// The slot is served by `pid` again (a rolling restart whose replacement failed).
    func restore(_ slot: Supervisor.Slot, to pid: Int32) {
        state.withLock { state in
            guard state.members[pid] != nil else { return }
            state.current[slot] = pid
            state.version += 1
        }
    }

    var droppedTotal: Int { state.withLock { $0.droppedTotal } }

    /// The branch of the process serving `slot` now, if it is ready.
    func readyBranch(of slot: Supervisor.Slot) -> String? {
        state.withLock { state in
            guard let pid = state.current[slot], let member = state.members[pid], member.state == .ready else { return nil }
            return member.identity.branchID
        }
    }

    /// Every live process and whether it serves its slot now, with a version that grows with each change.
    var membership: Membership {
        state.withLock { state in
            Membership(
                version: state.version,
                members: state.members.values.sorted { ($0.slot, $0.identity.pid) < ($1.slot, $1.identity.pid) }.map {
                    Membership.Member(identity: $0.identity, state: $0.state.rawValue, current: state.current[$0.slot] == $0.identity.pid)
                })
        }
    }

    // MARK: Routing

    /// Delivers a message now to each ready process its route names, and queues it for each slot whose process is
    /// not ready. Returns how many processes it goes to.
    @discardableResult
    func route(_ bytes: ByteBuffer) -> Int {
        guard let header = MessageEnvelope.header(of: bytes) else {
            log.warning("messenger: a message that is not an envelope; dropped")
            return 0
        }
        var overflow: [(Supervisor.Slot, Int)] = []
        var firstQueued: [Supervisor.Slot] = []
        let count = state.withLock { state -> Int in
            func send(_ slot: Supervisor.Slot) {
                if let pid = state.current[slot], let member = state.members[pid], member.state == .ready,
                    (try? rpc.send(ClusterMessage.deliver, body: bytes, to: member.identity.branchID)) != nil
                {
                    return
                }
                var queue = state.queues[slot] ?? []
                if queue.count >= limit {
                    state.dropped[slot, default: 0] += 1
                    state.droppedTotal += 1
                    let dropped = state.dropped[slot] ?? 0
                    if dropped == 1 || dropped % 1000 == 0 { overflow.append((slot, dropped)) }
                    return
                }
                if queue.isEmpty { firstQueued.append(slot) }
                queue.append(bytes)
                state.queues[slot] = queue
            }
            let slots = state.queues.keys
            switch header.route {
            case .broadcast:
                for slot in slots { send(slot) }
                return slots.count
            case .app:
                let workers = slots.filter { $0.role == .worker }
                for slot in workers { send(slot) }
                return workers.count
            case .agent:
                send(.agent)
                return 1
            case .worker(let id):
                guard state.queues[.worker(id)] != nil else { return 0 }
                send(.worker(id))
                return 1
            case .random:
                let ready = slots.filter { slot in
                    slot.role == .worker && state.current[slot].flatMap { state.members[$0] }?.state == .ready
                }
                guard let pick = ready.randomElement() ?? slots.filter({ $0.role == .worker }).randomElement() else { return 0 }
                send(pick)
                return 1
            case .pid(let pid):
                guard let member = state.members[pid] else { return 0 }
                if member.state == .ready || state.current[member.slot] != pid {
                    try? rpc.send(ClusterMessage.deliver, body: bytes, to: member.identity.branchID)
                } else {
                    send(member.slot)
                }
                return 1
            }
        }
        for slot in firstQueued { log.info("queueing messenger messages for the \(slot) until it is ready") }
        for (slot, dropped) in overflow {
            log.warning(
                "dropped \(dropped) messenger message(s) for the \(slot): its queue of \(limit) is full while it is not ready")
        }
        if count == 0 {
            log.warning("messenger: \"\(header.action)\" from \(header.from) to \(header.route) reaches no process; dropped")
        }
        return count
    }
}

/// Every live process of the cluster, as the master tells each child (the newest version wins).
struct Membership: Codable, Sendable {
    struct Member: Codable, Sendable {
        var identity: ProcessIdentity
        /// `starting`, `ready` or `stopping`.
        var state: String
        /// Whether it serves its slot now (a worker being replaced does not).
        var current: Bool
    }

    var version: Int
    var members: [Member]
}
