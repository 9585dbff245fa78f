import CShims
import Foundation
import Logging
import NIOCore
import OctopusLog
import OctopusRPC
import OctopusSchedule
import OctopusSystem

#if canImport(Glibc)
import Glibc
#endif

/// The master's supervisor: it starts the agent, then the workers, keeps each of them alive, routes messenger
/// messages between them, and stops them in order.
///
/// Supervision is data plus this one actor (the shape of OTP's supervisor and systemd's units): every child belongs
/// to a *slot* (the agent, or worker N) whose policy is the same — restart with exponential backoff after an
/// unexpected exit, give up when one slot exits `crashLoop.exits` times within `crashLoop.within` — and whose
/// replacement keeps its worker id. A child that announces it is stopping (SIGTERM to it) is replaced at once if it is
/// a worker (the count of live workers does not dip) and as soon as it has exited if it is the agent (the timers must
/// have one owner). Children stop in the reverse of their start order: the workers, then the agent.
actor Supervisor {
    enum Slot: Hashable, Comparable, Sendable, CustomStringConvertible {
        case agent
        case worker(Int)

        var role: ClusterRole {
            if case .agent = self { return .agent }
            return .worker
        }

        var workerID: Int? {
            if case .worker(let id) = self { return id }
            return nil
        }

        var description: String {
            switch self {
            case .agent: "agent"
            case .worker(let id): "worker \(id)"
            }
        }
    }

    enum ChildState: String, Sendable {
        case starting, ready, stopping
    }

    /// One process the master started.
    struct Child {
        var identity: ProcessIdentity
        var slot: Slot
        let process: RunningProcess
        var state: ChildState
        let startedAt: Date
        let started: ContinuousClock.Instant
        let tail: StderrTail
        /// Command process groups it registered (killed when it dies).
        var groups: Set<Int32> = []
        var timedOut = false
    }

    /// What the master knows of a slot across its children.
    struct SlotRecord {
        /// The child serving the slot now (starting or ready); nil while it is restarting.
        var current: Int32?
        /// Unexpected exits within the crash-loop window.
        var exits: [ContinuousClock.Instant] = []
        var restarts = 0
        var restartTask: Task<Void, Never>?
    }

    enum Phase: String {
        case starting, running, stopping, stopped
    }

    /// How a child's start ended.
    enum StartOutcome: Sendable {
        case ready
        case failed(String)
    }

    let cluster: ClusterConfiguration
    let executable: String
    let arguments: [String]
    let environment: [String: String]
    let secret: [UInt8]
    let rpc: RPCMaster
    let logging: LogSystem
    let log: Logger
    let runDirectory: String
    /// Listening sockets every worker gets (descriptors 4…), open in the master for its whole life.
    let listeners: [(address: ListenAddress, fd: Int32)]
    let startedAt = Date()

    private var phase = Phase.starting
    private var children: [Int32: Child] = [:]
    private var slots: [Slot: SlotRecord] = [:]
    private var startWaiters: [Int32: ResumeOnce<StartOutcome>] = [:]
    let router: MessageRouter
    private var rollingRestart: Task<Void, Never>?
    /// The exit status of the master, once decided.
    let finished = ResumeOnce<Int32>()

    init(
        cluster: ClusterConfiguration, executable: String, arguments: [String], environment: [String: String],
        secret: [UInt8], rpc: RPCMaster, logging: LogSystem, log: Logger, runDirectory: String,
        listeners: [(address: ListenAddress, fd: Int32)] = []
    ) {
        self.cluster = cluster
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.secret = secret
        self.rpc = rpc
        self.logging = logging
        self.log = log
        self.runDirectory = runDirectory
        self.listeners = listeners
        self.router = MessageRouter(rpc: rpc, queueLimit: cluster.messageQueueLimit, log: log)
    }

    // MARK: Start

    /// Starts the agent and waits until it is ready, then every worker; tells everyone the cluster is ready. Throws
    /// (having stopped whatever started) when the agent or every worker fails to start.
    func start() async throws(ClusterError) {
        let began = ContinuousClock.now
        slots[.agent] = SlotRecord()
        for id in 1...cluster.workers { slots[.worker(id)] = SlotRecord() }
        router.declare(Array(slots.keys))

        if case .failed(let why) = await startAndWait(.agent) {
            try checkStillStarting()
            await stopAll(reason: "the agent did not start")
            throw ClusterError(.startFailed, "the agent did not start: \(why)")
        }
        try checkStillStarting()
        var waits: [(Slot, ResumeOnce<StartOutcome>?)] = []
        for id in 1...cluster.workers {
            waits.append((.worker(id), spawnForStart(.worker(id))))
        }
        var failures: [(Slot, String)] = []
        for (slot, waiter) in waits {
            guard let waiter else {
                failures.append((slot, "it could not be spawned"))
                continue
            }
            if case .failed(let why) = await waiter.value { failures.append((slot, why)) }
        }
        try checkStillStarting()
        if failures.count == cluster.workers {
            await stopAll(reason: "no worker started")
            let reasons = failures.map { "\($0.0): \($0.1)" }.joined(separator: "\n")
            throw ClusterError(.startFailed, "no worker started:\n\(reasons)")
        }
        phase = .running
        for (slot, why) in failures { log.error("\(slot) did not start: \(why)") }
        // Restarted like any crash: the workers that did not start, and any child that was ready and has exited
        // while the others started.
        for slot in slots.keys.sorted() where slots[slot]?.current == nil { crashed(slot) }
        // Everyone learns who is there before hearing that the cluster is ready (the agent then starts its timers).
        publishMembership()
        for child in children.values where child.state == .ready { announceClusterReady(to: child) }
        let ms = (ContinuousClock.now - began).milliseconds
        let ready = children.values.filter { $0.state == .ready && $0.slot != .agent }.count
        log.info("cluster ready in \(ms) ms: the agent and \(ready) of \(cluster.workers) worker(s)")
    }

    /// A stop request while starting ends the start (the stop itself decides the exit status).
    private func checkStillStarting() throws(ClusterError) {
        if phase != .starting { throw ClusterError(.startFailed, "stopped while starting") }
    }

    /// Whether a stop was asked for (a signal, the control socket, the crash-loop limit) rather than the start
    /// failing by itself.
    private(set) var stopRequested = false
    /// A second stop request killed every child: the master exits 1 whichever stop finishes first.
    private var stoppedAtOnce = false

    /// Spawns the slot's child and waits until it is ready or has failed.
    private func startAndWait(_ slot: Slot) async -> StartOutcome {
        guard let waiter = spawnForStart(slot) else { return .failed("it could not be spawned") }
        return await waiter.value
    }

    private func spawnForStart(_ slot: Slot) -> ResumeOnce<StartOutcome>? {
        guard let pid = spawn(slot) else { return nil }
        let waiter = ResumeOnce<StartOutcome>()
        startWaiters[pid] = waiter
        return waiter
    }

    /// Starts a child for `slot`: a socketpair (the child's end becomes its descriptor 3), a pipe for its stderr,
    /// `/proc/self/exe` with this process's arguments, its role in the environment, SIGINT ignored (a terminal's
    /// Ctrl-C is the master's to handle) and the parent-death signal armed. Returns nil (logged) when it cannot.
    @discardableResult
    private func spawn(_ slot: Slot) -> Int32? {
        var pair: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard octopus_socketpair_cloexec(&pair) == 0 else {
            log.error("cannot start the \(slot): socketpair: \(String(cString: strerror(errno)))")
            return nil
        }
        guard octopus_pipe_cloexec(&errPipe) == 0 else {
            log.error("cannot start the \(slot): pipe: \(String(cString: strerror(errno)))")
            close(pair[0])
            close(pair[1])
            return nil
        }
        var environment = self.environment
        environment[ChildEnvironment.role] = slot.role.rawValue
        environment[ChildEnvironment.masterPID] = "\(getpid())"
        if let id = slot.workerID {
            environment[ChildEnvironment.workerID] = "\(id)"
        } else {
            environment[ChildEnvironment.workerID] = nil
        }
        var descriptors = [-1, 1, errPipe[1], pair[1]]
        if slot.role == .worker, !listeners.isEmpty {
            environment[ChildEnvironment.listen] = listeners.enumerated().map { index, listener in
                "\(4 + index)=\(listener.address)"
            }.joined(separator: ",")
            descriptors += listeners.map(\.fd)
        } else {
            environment[ChildEnvironment.listen] = nil
        }
        var spec = ProcessSpec(
            executable: executable, arguments: arguments, environment: environment, descriptors: descriptors)
        spec.deathSignal = ParentDeath.signal
        spec.ignoreInterrupt = true
        let process: RunningProcess
        do {
            process = try Spawner.spawn(spec)
        } catch {
            log.error("cannot start the \(slot): \(error)")
            for fd in pair + errPipe { close(fd) }
            return nil
        }
        close(pair[1])
        close(errPipe[1])
        let identity = ProcessIdentity(role: slot.role, workerID: slot.workerID, pid: process.pid)
        // The secret goes first, before any frame, on the channel only this child holds.
        let preamble = Array((ChildEnvironment.preambleTag + secret.hexString + "\n").utf8)
        _ = preamble.withUnsafeBytes { send(pair[0], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let child = Child(
            identity: identity, slot: slot, process: process, state: .starting, startedAt: Date(),
            started: .now, tail: StderrTail(reading: errPipe[0]))
        children[process.pid] = child
        slots[slot, default: SlotRecord()].current = process.pid
        router.spawned(identity, slot: slot)
        log.info("spawned \(identity)")
        let masterEnd = pair[0]
        let rpc = self.rpc
        Task {
            // The RPC master owns the descriptor from the call on, and closes it when adopting fails: closing it
            // here too would close whatever the number had been given to meanwhile (another connection's socket).
            do {
                try await rpc.adopt(descriptor: masterEnd, branch: identity.branchID)
            } catch {
                self.cannotTalk(to: process.pid, error)
            }
        }
        Task {
            let status = await process.exit.value
            await self.exited(process.pid, status)
        }
        // The child holds each of its hooks to startupTimeout itself and says which one overran; the master's
        // deadline is the backstop for a child that hangs anywhere else.
        let timeout = cluster.startupTimeout + Self.startupGrace
        Task {
            try? await Task.sleep(for: timeout)
            self.startupTimedOut(process.pid)
        }
        return process.pid
    }

    private func cannotTalk(to pid: Int32, _ error: any Error) {
        guard let child = children[pid] else { return }
        log.error("cannot talk to \(child.identity): \(error); killing it")
        child.process.signal(SIGKILL)
    }

    /// How much longer than `startupTimeout` the master waits for a child to be ready.
    static let startupGrace: Duration = .seconds(2)

    private func startupTimedOut(_ pid: Int32) {
        guard var child = children[pid], child.state == .starting else { return }
        log.error("\(child.identity) was not ready within \(cluster.startupTimeout + Self.startupGrace); killing it")
        child.timedOut = true
        children[pid] = child
        child.process.signal(SIGKILL)
    }

    // MARK: What children say

    /// A child is ready for work.
    func ready(_ branch: String?) -> Bool {
        guard let pid = branch.flatMap(ProcessIdentity.init(branchID:))?.pid, var child = children[pid] else {
            return false
        }
        guard child.state == .starting else { return true }
        child.state = .ready
        children[pid] = child
        let ms = (ContinuousClock.now - child.started).milliseconds
        log.info("\(child.identity) ready in \(ms) ms")
        startWaiters.removeValue(forKey: pid)?.resume(.ready)
        router.ready(pid)
        if phase == .running {
            publishMembership()
            announceClusterReady(to: child)
        }
        return true
    }

    /// A child is stopping on its own (SIGTERM to it, or a fatal error in it).
    func stopping(_ branch: String?, reason: String) {
        guard let pid = branch.flatMap(ProcessIdentity.init(branchID:))?.pid, var child = children[pid],
            child.state != .stopping
        else { return }
        child.state = .stopping
        children[pid] = child
        log.info("\(child.identity) is stopping: \(reason)")
        // A worker is replaced now, while it finishes what it runs: the number of live workers does not dip. (The
        // agent is replaced once it has exited: the timers have one owner.)
        let replaceNow = phase == .running && slots[child.slot]?.current == pid && child.slot.role == .worker
        router.stopping(pid, vacate: replaceNow)
        publishMembership()
        guard replaceNow else { return }
        slots[child.slot]?.current = nil
        slots[child.slot]?.restarts += 1
        log.info("starting a replacement for \(child.identity) while it finishes")
        if spawn(child.slot) == nil { crashed(child.slot) }
    }

    func registerGroup(_ branch: String?, _ pgid: Int32) -> Bool {
        guard let pid = branch.flatMap(ProcessIdentity.init(branchID:))?.pid, children[pid] != nil else { return false }
        children[pid]?.groups.insert(pgid)
        return true
    }

    func groupEnded(_ branch: String?, _ pgid: Int32) {
        guard let pid = branch.flatMap(ProcessIdentity.init(branchID:))?.pid else { return }
        children[pid]?.groups.remove(pgid)
    }

    // MARK: Exits

    private func exited(_ pid: Int32, _ status: ExitStatus) async {
        guard let child = children.removeValue(forKey: pid) else { return }
        for group in child.groups {
            // What a command task started dies with the process that started it.
            kill(-group, SIGKILL)
        }
        let seconds = String(format: "%.1f", Double((ContinuousClock.now - child.started).milliseconds) / 1000)
        let how = status.isSuccess ? "exited" : "exited with \(status)"
        if child.state == .stopping || phase == .stopping || phase == .stopped {
            log.info("\(child.identity) \(how) after \(seconds) s")
        } else {
            log.error("\(child.identity) \(how) after \(seconds) s")
        }
        if slots[child.slot]?.current == pid { slots[child.slot]?.current = nil }
        router.exited(pid)
        // Also while stopping: the agent outlives the workers and must hear that one running a tick has died.
        if phase != .stopped { publishMembership() }
        if let waiter = startWaiters.removeValue(forKey: pid) {
            let lines = await child.tail.lastLines(waitingAtMost: .milliseconds(500))
            let reason = child.timedOut ? "not ready within \(cluster.startupTimeout + Self.startupGrace)" : "it \(how)"
            waiter.resume(.failed(reason + Self.stderrSuffix(lines)))
            if phase == .starting { return }
        }
        guard phase == .running else { return }
        if child.state == .stopping {
            // It stopped on its own: the agent is replaced now, a worker was replaced when it said it was stopping.
            if slots[child.slot]?.current == nil {
                slots[child.slot]?.restarts += 1
                if spawn(child.slot) == nil { crashed(child.slot) }
            }
            return
        }
        crashed(child.slot, lastLines: await child.tail.lastLines(waitingAtMost: .milliseconds(500)), status: status)
    }

    /// An unexpected exit of the slot's child: restart it after the backoff, or give up past the crash-loop limit.
    private func crashed(_ slot: Slot, lastLines: [String] = [], status: ExitStatus? = nil) {
        let now = ContinuousClock.now
        var record = slots[slot, default: SlotRecord()]
        record.exits = record.exits.filter { now - $0 < cluster.crashLoopWindow } + [now]
        let count = record.exits.count
        if count >= cluster.crashLoopExits {
            slots[slot] = record
            let message =
                "the \(slot) exited \(count) times within \(cluster.crashLoopWindow)\(status.map { " (last: \($0))" } ?? ""); giving up and stopping everything"
                + Self.stderrSuffix(lastLines)
            log.critical("\(message)")
            printError("octopus: \(message)")
            Task { await self.stop(exitCode: 1) }
            return
        }
        let delay = backoff(afterExits: count)
        log.warning(
            "restarting the \(slot) in \(delay) (exit \(count) of \(cluster.crashLoopExits) allowed within \(cluster.crashLoopWindow))")
        record.restartTask?.cancel()
        record.restartTask = Task {
            try? await Task.sleep(for: delay)
            self.restart(slot)
        }
        slots[slot] = record
    }

    /// initial × 2^(exits − 1), at most the maximum.
    func backoff(afterExits count: Int) -> Duration {
        var delay = cluster.restartBackoffInitial
        for _ in 1..<max(1, count) {
            delay *= 2
            if delay >= cluster.restartBackoffMaximum { return cluster.restartBackoffMaximum }
        }
        return min(delay, cluster.restartBackoffMaximum)
    }

    private func restart(_ slot: Slot) {
        guard phase == .running, slots[slot]?.current == nil else { return }
        slots[slot]?.restarts += 1
        slots[slot]?.restartTask = nil
        if spawn(slot) == nil { crashed(slot) }
    }

    static func stderrSuffix(_ lines: [String]) -> String {
        lines.isEmpty ? "" : "; its last lines on stderr:\n" + lines.map { "  | \($0)" }.joined(separator: "\n")
    }

    // MARK: Stop

    /// Stops gracefully: the workers (SIGTERM, then SIGKILL after `shutdownTimeout`), then the agent; then the
    /// master's exit status is `exitCode`.
    func stop(exitCode: Int32 = 0) async {
        guard phase != .stopping, phase != .stopped else { return }
        stopRequested = true
        await stopAll(reason: exitCode == 0 ? "stop requested" : "giving up")
        // A second request may have stopped everything at once meanwhile (both wait for the same exits, and either
        // may resume first): its status stands.
        finished.resume(stoppedAtOnce ? 1 : exitCode)
    }

    /// A second stop request: every child gets SIGKILL now; the master exits non-zero.
    func stopNow() async {
        if phase == .stopped { return }
        stopRequested = true
        stoppedAtOnce = true
        phase = .stopping
        log.warning("stopping at once: SIGKILL to every child")
        cancelRestarts()
        let all = children.values.map(\.process)
        for process in all { process.signal(SIGKILL) }
        for process in all { _ = await process.exit.value }
        phase = .stopped
        finished.resume(1)
    }

    func stopAll(reason: String) async {
        phase = .stopping
        cancelRestarts()
        rollingRestart?.cancel()
        for waiter in startWaiters.values { waiter.resume(.failed("the master is stopping")) }
        startWaiters.removeAll()
        let workers = children.values.filter { $0.slot != .agent }
        log.info("stopping (\(reason)): \(workers.count) worker(s), then the agent")
        await stopChildren(workers.map(\.identity.pid))
        await stopChildren(children.values.filter { $0.slot == .agent }.map(\.identity.pid))
        // Children that appeared meanwhile (a spawn racing the stop).
        await stopChildren(Array(children.keys))
        if phase == .stopping { phase = .stopped }
        log.info("every child has stopped")
    }

    private func cancelRestarts() {
        for slot in slots.keys {
            slots[slot]?.restartTask?.cancel()
            slots[slot]?.restartTask = nil
        }
    }

    /// SIGTERM to each, then waits until they are gone or `shutdownTimeout` has passed, then SIGKILL.
    private func stopChildren(_ pids: [Int32]) async {
        let targets = pids.compactMap { children[$0] }
        guard !targets.isEmpty else { return }
        for child in targets {
            children[child.identity.pid]?.state = .stopping
            child.process.signal(SIGTERM)
        }
        let timeout = cluster.shutdownTimeout
        let processes = targets.map(\.process)
        let waitForAll: @Sendable () async -> Bool = {
            for process in processes { _ = await process.exit.value }
            return true
        }
        let allGone = await value(of: waitForAll, orNilAfter: timeout) ?? false
        if !allGone {
            for child in targets where !child.process.hasExited {
                log.warning("\(child.identity) still running \(timeout) after SIGTERM; sending SIGKILL")
                child.process.signal(SIGKILL)
            }
        }
        // Each exit is recorded (and logged) before this returns, whichever task sees it first.
        for process in processes { await exited(process.pid, await process.exit.value) }
    }

    // MARK: Signals

    /// SIGHUP: the master's files and every child's are reopened.
    func reopenFiles() {
        logging.reopenFiles()
        for child in children.values {
            try? rpc.send(ClusterMessage.reopen, body: ByteBuffer(), to: child.identity.branchID)
        }
        log.info("reopened log files (SIGHUP), and told \(children.count) child(ren) to")
    }

    /// SIGUSR2: the workers are replaced one at a time, each replacement ready before its predecessor is stopped.
    func startRollingRestart() {
        guard phase == .running, rollingRestart == nil else {
            log.warning("a rolling restart is already under way, or the cluster is not running; SIGUSR2 ignored")
            return
        }
        rollingRestart = Task { await self.rollWorkers() }
    }

    private func rollWorkers() async {
        defer { rollingRestart = nil }
        let ids = slots.keys.compactMap(\.workerID).sorted()
        log.info("rolling restart of \(ids.count) worker(s)")
        for id in ids {
            guard phase == .running else { return }
            let slot = Slot.worker(id)
            guard let old = slots[slot]?.current else { continue }
            slots[slot]?.current = nil
            slots[slot]?.restarts += 1
            guard let waiter = spawnForStart(slot) else {
                log.error("rolling restart stopped: no replacement for worker \(id) could be spawned")
                slots[slot]?.current = old
                router.restore(slot, to: old)
                return
            }
            if case .failed(let why) = await waiter.value {
                log.error("rolling restart stopped: the replacement of worker \(id) did not start: \(why)")
                if slots[slot]?.current == nil, children[old] != nil {
                    slots[slot]?.current = old
                    router.restore(slot, to: old)
                }
                return
            }
            if let child = children[old] {
                log.info("rolling restart: stopping \(child.identity)")
                await stopChildren([old])
            }
        }
        log.info("rolling restart done")
    }

    // MARK: Log rotation

    /// A follower's request to roll `file` goes to the agent, which owns rotation (dropped while no agent is ready:
    /// the follower asks again while the file stays too big).
    nonisolated func forwardRollRequest(_ file: String) {
        guard let agent = router.readyBranch(of: .agent) else { return }
        try? rpc.send(ClusterMessage.rollRequest, body: ByteBuffer(string: file), to: agent)
    }

    /// How long the agent's barrier waits for a process to reopen a rolled file before it is archived anyway.
    static let reopenDeadline: Duration = .seconds(10)

    /// The agent rolled `file`: every other process (the master too) reopens it; returns once each has, or is gone,
    /// or the deadline has passed (logged).
    func rollBarrier(file: String, from caller: String?) async -> Bool {
        logging.reopen(file: file)
        let others = children.values.map(\.identity).filter { $0.branchID != caller }
        let deadline = ContinuousClock.now + Self.reopenDeadline
        await withTaskGroup(of: Void.self) { group in
            for identity in others {
                group.addTask { await self.reopen(file, in: identity, before: deadline) }
            }
        }
        return true
    }

    /// Asks one process to reopen `file`, waiting for a process still starting to bind; gives up (logged) at the
    /// deadline, and at once for a process that is gone.
    private nonisolated func reopen(_ file: String, in identity: ProcessIdentity, before deadline: ContinuousClock.Instant) async {
        while ContinuousClock.now < deadline {
            do {
                _ = try await rpc.call(ReopenFile.self, file, on: identity.branchID, timeout: deadline - ContinuousClock.now)
                return
            } catch {
                guard await isAlive(identity.pid) else { return }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        log.warning("\(identity) did not reopen \(file) within \(Self.reopenDeadline) after a roll; archiving it anyway")
    }

    private func isAlive(_ pid: Int32) -> Bool { children[pid] != nil }

    // MARK: Membership

    /// Tells every child who is in the cluster now (the messenger's `sendTo(pid:)` and calls, the agent's
    /// dispatcher).
    private func publishMembership() {
        guard let body = try? JSONEncoder().encode(router.membership) else { return }
        let buffer = ByteBuffer(bytes: body)
        for child in children.values {
            try? rpc.send(ClusterMessage.members, body: buffer, to: child.identity.branchID)
        }
    }

    /// Tells a child every process is ready; an agent that is not the service's first learns that it is a
    /// replacement (its `immediate` ticks ran already).
    private func announceClusterReady(to child: Child) {
        let replacement = child.slot == .agent && (slots[.agent]?.restarts ?? 0) > 0
        try? rpc.send(
            ClusterMessage.clusterReady, body: ByteBuffer(string: replacement ? "replacement" : ""), to: child.identity.branchID)
    }

    // MARK: Run now

    /// `octopus run NAME` while the service runs: the agent runs the task now, as its type says.
    func runNow(_ name: String) async -> RunNowResult {
        guard let agentPID = slots[.agent]?.current, let agent = children[agentPID], agent.state == .ready else {
            return RunNowResult(outcome: .notRun(reason: "the agent is not ready"), runs: [], error: "the agent is not ready")
        }
        do {
            // The task's own timeout is the agent's and the workers' to enforce; this only has to outlast it.
            return try await rpc.call(ScheduleRunNow.self, name, on: agent.identity.branchID, timeout: .seconds(7 * 24 * 3600))
        } catch {
            return RunNowResult(outcome: .notRun(reason: "\(error)"), runs: [], error: "the agent did not answer: \(error)")
        }
    }

    // MARK: Status

    /// Every process, with the schedules as the agent reports them.
    func status() async -> ClusterStatus {
        let now = Date()
        func row(_ child: Child) -> ProcessStatus {
            ProcessStatus(
                role: child.identity.role, workerID: child.identity.workerID, pid: child.identity.pid,
                state: child.state.rawValue, startedAt: child.startedAt,
                uptimeSeconds: now.timeIntervalSince(child.startedAt), restarts: slots[child.slot]?.restarts ?? 0,
                residentBytes: ProcessTable.residentBytes(child.identity.pid))
        }
        let processes = children.values.sorted { ($0.slot, $0.identity.pid) < ($1.slot, $1.identity.pid) }.map(row)
        let master = ProcessStatus(
            role: .master, workerID: nil, pid: getpid(), state: phase.rawValue, startedAt: startedAt,
            uptimeSeconds: now.timeIntervalSince(startedAt), restarts: 0, residentBytes: ProcessTable.residentBytes(getpid()))
        var schedules: [ScheduledTaskStatus] = []
        var schedulesError: String?
        if let agentPID = slots[.agent]?.current, let agent = children[agentPID], agent.state == .ready {
            do {
                schedules = try await rpc.call(
                    ScheduleStatusQuery.self, 0, on: agent.identity.branchID, timeout: .seconds(2))
            } catch {
                schedulesError = "the agent did not answer: \(error)"
            }
        } else {
            schedulesError = "the agent is not ready"
        }
        return ClusterStatus(
            state: phase.rawValue, master: master, processes: processes, schedules: schedules,
            schedulesError: schedulesError, runDirectory: runDirectory, droppedMessages: router.droppedTotal,
            listening: listeners.map(\.address.description))
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension Array where Element == UInt8 {
    var hexString: String {
        map { String(format: "%02x", $0) }.joined()
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
