import Foundation
public import Logging
public import OctopusLog
import NIOCore
import OctopusRPC
import OctopusSchedule
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A process the master started (the agent or a worker), as it learned at launch: its role, its worker id, its
/// master, and the secret to bind with.
public struct ChildLaunch: Sendable {
    public let identity: ProcessIdentity
    public let masterPID: Int32
    let secret: [UInt8]
    /// Workers: the listening sockets the master opened (`cluster.listen`), by address.
    public let listeningSockets: [(address: ListenAddress, descriptor: Int32)]

    /// Whether a master started this process (as the agent or a worker).
    public static var startedByMaster: Bool { ChildEnvironment.child() != nil }

    /// What this process is, when the master started it; nil for a process started otherwise. Arms the parent-death
    /// signal (and fails when the master is already gone) and reads the secret from the private channel.
    public static func fromEnvironment() throws(ClusterError) -> ChildLaunch? {
        guard let (role, workerID, masterPID) = ChildEnvironment.child() else { return nil }
        let listening = (ProcessInfo.processInfo.environment[ChildEnvironment.listen] ?? "").split(separator: ",")
            .compactMap { entry -> (ListenAddress, Int32)? in
                guard let equals = entry.firstIndex(of: "="), let fd = Int32(entry[..<equals]),
                    let address = ListenAddress(String(entry[entry.index(after: equals)...]))
                else { return nil }
                return (address, fd)
            }
        ChildEnvironment.clear()
        guard ParentDeath.arm(expectedParent: masterPID) else {
            throw ClusterError(.startFailed, "the master (pid \(masterPID)) is gone; not starting")
        }
        let line = readPreamble(ChildEnvironment.channelDescriptor)
        guard line.hasPrefix(ChildEnvironment.preambleTag),
            let secret = [UInt8](hexDigits: String(line.dropFirst(ChildEnvironment.preambleTag.count)))
        else {
            throw ClusterError(
                .startFailed,
                "descriptor \(ChildEnvironment.channelDescriptor) is not a channel from an Octopus master (started by hand with \(ChildEnvironment.role) set?)")
        }
        return ChildLaunch(
            identity: ProcessIdentity(role: role, workerID: workerID, pid: getpid()), masterPID: masterPID, secret: secret,
            listeningSockets: listening)
    }

    /// The first line on the channel, read a byte at a time so that nothing after it is consumed.
    private static func readPreamble(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < 512 {
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n != 1 || byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A child's tie to its master, over the private channel it inherited: it binds (proving the secret), tells the
/// master when it is ready and when it is stopping, registers the process groups its command tasks start, hears when
/// the whole cluster is ready, and notices the master's end (the channel closes).
public final class ClusterChild: Sendable {
    public let identity: ProcessIdentity
    public let masterPID: Int32
    public let messenger: Messenger
    let listeningSockets: [(address: ListenAddress, descriptor: Int32)]
    let branch: RPCBranch
    private let secret: [UInt8]
    private let rotation: RotationRelay
    private let logger: Logger
    private let clusterReadyLatch = Latch()
    private let masterGoneOnce = ResumeOnce<String>()
    private let members = Mutex<Membership?>(nil)
    private let membershipObservers = Mutex<[@Sendable (Membership) -> Void]>([])
    private let replacementAgent = Atomic<Bool>(false)

    /// How a cluster client takes part in this process: the agent leads, workers follow, through sockets in
    /// `runDirectory` bound with the cluster's secret.
    public func clientMode(runDirectory: String) -> ClusterClientMode {
        .cluster(leads: identity.role == .agent, runDirectory: runDirectory, secret: secret)
    }

    /// - Parameters:
    ///   - logging: this process's logging system, made with `rotation.coordination(for: launch.identity.role)`.
    public init(_ launch: ChildLaunch, messenger: Messenger, logging: LogSystem, rotation: RotationRelay, logger: Logger) {
        identity = launch.identity
        masterPID = launch.masterPID
        listeningSockets = launch.listeningSockets
        secret = launch.secret
        self.rotation = rotation
        self.messenger = messenger
        self.logger = logger
        var options = RPCOptions()
        options.secret = launch.secret
        options.reportDuplicateActions = false
        let handlers = messenger.rpcHandlers
        var rpcLog = logger
        rpcLog.logLevel = .warning
        branch = RPCBranch(id: launch.identity.branchID, handlers: handlers, options: options, logger: rpcLog)
        let clusterReadyLatch = self.clusterReadyLatch
        handlers.onMessage(ClusterMessage.clusterReady) { [weak self] body, _ in
            if String(buffer: body) == "replacement" { self?.replacementAgent.store(true, ordering: .relaxed) }
            clusterReadyLatch.open()
        }
        handlers.onMessage(ClusterMessage.deliver) { [weak messenger, logger] body, _ in
            guard let envelope = MessageEnvelope(decoding: body) else {
                logger.warning("messenger: a delivery that is not an envelope")
                return
            }
            messenger?.receive(envelope)
        }
        // SIGHUP to the master: every file; a roll by the agent: one file, answered once done. Reopening waits for the
        // writer thread, so it runs off the event loop.
        handlers.onMessage(ClusterMessage.reopen) { _, _ in Task.detached { logging.reopenFiles() } }
        handlers.register(ReopenFile.self) { file in
            await Task.detached { logging.reopen(file: file) }.value
            return true
        }
        if launch.identity.role == .agent {
            handlers.onMessage(ClusterMessage.rollRequest) { body, _ in
                let file = String(buffer: body)
                Task.detached { logging.rollIfOversized(file: file) }
            }
        }
        handlers.onMessage(ClusterMessage.members) { [weak self] body, _ in
            guard let membership = try? JSONDecoder().decode(Membership.self, from: Data(body.readableBytesView)) else {
                return
            }
            self?.learn(membership)
        }
    }

    /// Binds to the master over the inherited channel; from then on the messenger works and the command tasks'
    /// process groups are recorded with the master.
    public func connect() async throws {
        let events = branch.events
        let masterGone = masterGoneOnce
        try await branch.connect(descriptor: ChildEnvironment.channelDescriptor)
        Task {
            for await event in events {
                if case .disconnected(let reason) = event {
                    masterGone.resume(reason)
                    return
                }
            }
        }
        learn(try await branch.call(MembersQuery.self, 0))
        messenger.attach(branch: branch, identity: identity, logger: logger) { [weak self] in self?.membership }
        CommandProcessGroups.observer = GroupRecorder(branch: branch)
        rotation.connect(branch, logger: logger)
    }

    /// Keeps the newest membership the master told, and tells the observers.
    private func learn(_ membership: Membership) {
        let newer = members.withLock { known -> Bool in
            guard known.map({ $0.version < membership.version }) ?? true else { return false }
            known = membership
            return true
        }
        guard newer else { return }
        for observer in membershipObservers.withLock({ $0 }) { observer(membership) }
    }

    /// Runs `observer` with every newer membership the master tells.
    func onMembership(_ observer: @escaping @Sendable (Membership) -> Void) {
        membershipObservers.withLock { $0.append(observer) }
    }

    /// Agent: whether an agent ran before this one in this service (its `immediate` ticks have run then).
    public var isReplacementAgent: Bool { replacementAgent.load(ordering: .relaxed) }

    var membership: Membership? { members.withLock { $0 } }

    /// Worker: a new descriptor (the caller owns it) of the listening socket the master opened for `port`
    /// (`cluster.listen`), optionally of one host; nil when there is none. Every worker accepts on the same socket.
    public func listeningSocket(port: Int, host: String? = nil) -> Int32? {
        guard let found = listeningSockets.first(where: { $0.address.port == port && (host == nil || $0.address.host == host) })
        else { return nil }
        let copy = fcntl(found.descriptor, F_DUPFD_CLOEXEC, 0)
        return copy >= 0 ? copy : nil
    }

    /// Worker: every listening socket the master handed down, by address (descriptors this process must not close).
    public var listeners: [ListenAddress] { listeningSockets.map(\.address) }

    /// Tells the master this process is ready for work.
    public func reportReady() async throws {
        _ = try await branch.call(ChildReady.self, identity.pid)
    }

    /// Returns once every process of the cluster is ready (for a replacement started later: once it is ready
    /// itself), or when the calling task is cancelled.
    public func clusterReady() async {
        await clusterReadyLatch.wait()
    }

    /// Tells the master this process is stopping on its own, so that it is replaced rather than counted as a crash.
    /// Returns once the master has recorded it (or 2 s have passed): the master must know before this process
    /// exits, or it would take the exit for a crash.
    public func announceStopping(_ reason: String) async {
        _ = try? await branch.call(ChildStopping.self, reason, timeout: .seconds(2))
    }

    /// Returns when the master is gone (the channel closed), with why.
    public func masterGone() async -> String {
        await masterGoneOnce.value
    }

    /// Closes the channel.
    public func close() async {
        CommandProcessGroups.observer = nil
        await branch.close()
    }

    // MARK: Schedules

    /// Agent: the workers that are ready now, as the master last said.
    var workers: [ProcessIdentity] {
        (membership?.members ?? []).filter { $0.identity.role == .worker && $0.state == "ready" }.map(\.identity)
    }
}

/// Records command tasks' process groups with the master before their programs run.
private struct GroupRecorder: ProcessGroupObserver {
    let branch: RPCBranch

    func groupStarted(_ pgid: Int32) async throws {
        _ = try await branch.call(RegisterGroup.self, pgid, timeout: .seconds(5))
    }

    func groupEnded(_ pgid: Int32) {
        try? branch.send(ClusterMessage.groupEnded, body: ByteBuffer(string: "\(pgid)"))
    }
}

extension Array where Element == UInt8 {
    /// The bytes a hex string spells, or nil.
    init?(hexDigits text: String) {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, !digits.isEmpty else { return nil }
        var bytes: [UInt8] = []
        var i = 0
        while i < digits.count {
            guard let byte = UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
            i += 2
        }
        self = bytes
    }
}
