import Foundation
import Logging
import NIOCore
import OctopusRPC
import Synchronization

/// A follower's side: a connection to the leader's socket (reconnected within milliseconds when the leader changes),
/// one remote subscription per key wanted here, and the values the leader pushes.
final class Follower<Connection: SharedConnection>: Sendable {
    typealias Value = Connection.Value

    private let ownerReference: WeakReference<ClusterClient<Connection>>
    private var owner: ClusterClient<Connection>? { ownerReference.value }
    private let branch: RPCBranch
    private let logger: Logger
    private let name: String
    /// The term of the leader this connection is bound to.
    private let term = Atomic<UInt64>(0)
    private let closed = Atomic<Bool>(false)

    init(owner: ClusterClient<Connection>, secret: [UInt8]?) {
        self.ownerReference = WeakReference(owner)
        self.logger = owner.logger
        self.name = owner.name
        var options = RPCOptions()
        options.secret = secret
        options.heartbeatInterval = .seconds(5)
        // The next leader listens within milliseconds of the last one's death: look for it as often.
        options.reconnectMinimumDelay = .milliseconds(2)
        options.reconnectMaximumDelay = .milliseconds(50)
        var quiet = owner.logger
        quiet.logLevel = .warning
        let handlers = RPCHandlers()
        branch = RPCBranch(id: "follower-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", handlers: handlers, options: options, logger: quiet)
        handlers.onMessage(ClientWire.value) { [weak self] body, _ in self?.pushed(body, failed: false) }
        handlers.onMessage(ClientWire.failed) { [weak self] body, _ in self?.pushed(body, failed: true) }
    }

    /// Connected to a leader whose term it knows (requests carry that term).
    var isReady: Bool { branch.isConnected && term.load(ordering: .relaxed) != 0 }

    /// Connects to the leader's socket in the background, trying every few milliseconds until a leader listens; then
    /// the branch keeps connected (after each reconnection the follower learns the term and subscribes again).
    func start(_ path: String) {
        let events = branch.events
        Task { [weak self] in
            for await event in events {
                guard let self, !self.closed.load(ordering: .relaxed) else { return }
                switch event {
                case .connected: await self.hello()
                case .disconnected:
                    self.term.store(0, ordering: .relaxed)
                    self.owner?.followerLost()
                default: break
                }
            }
        }
        Task { [weak self, branch, name, logger] in
            var delay = Duration.milliseconds(2)
            while let self, !self.closed.load(ordering: .relaxed) {
                do {
                    try await branch.connect(to: .unix(path))
                    return
                } catch let error as RPCError where error.code == .authenticationFailed || error.code == .versionMismatch {
                    logger.error("\(name): the leader at \(path) refused this follower: \(error)")
                    return
                } catch {
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .milliseconds(50))
                }
            }
        }
    }

    /// Asks the leader its term, again (with backoff) while it fails and the connection lasts: a follower that
    /// does not know the term sends nothing, so giving up would leave it connected and never ready.
    private func hello() async {
        var delay = Duration.milliseconds(10)
        var failures = 0
        while !closed.load(ordering: .relaxed) && branch.isConnected {
            do {
                let leaderTerm = try await branch.call(ClientHello.self, 0, timeout: .seconds(5))
                term.store(leaderTerm, ordering: .relaxed)
                owner?.followerConnected(term: leaderTerm)
                if failures > 0 { logger.info("\(name): the leader said its term after \(failures) failed attempt(s)") }
                return
            } catch {
                failures += 1
                // Once, then every 10th: a leader that stays silent must not flood the log.
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("\(name): the leader did not say its term (attempt \(failures); asking again): \(error)")
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// A value (or a failure) the leader pushed; one of another term than the leader bound to is refused.
    private func pushed(_ body: ByteBuffer, failed: Bool) {
        guard let (pushTerm, key, payload) = ClientWire.decode(body) else { return }
        let bound = term.load(ordering: .relaxed)
        guard pushTerm == bound else {
            logger.warning("\(name): refused a push of term \(pushTerm) (bound to term \(bound))")
            return
        }
        if failed {
            owner?.failLocally(key, RPCError(.subscribeFailed, String(buffer: payload)))
            return
        }
        do {
            owner?.deliverLocally(key, try JSONCodec().decode(Value.self, from: payload))
        } catch {
            logger.warning("\(name): a value of \(key) that does not decode: \(error)")
        }
    }

    func subscribe(_ key: String) {
        Task { _ = try? await call(ClientWire.subscribe, name: key, body: ByteBuffer(), timeout: .seconds(5)) }
    }

    func unsubscribe(_ key: String) {
        Task { _ = try? await call(ClientWire.unsubscribe, name: key, body: ByteBuffer(), timeout: .seconds(5)) }
    }

    func call(_ action: String, name: String, body: ByteBuffer, timeout: Duration) async throws -> ByteBuffer {
        let frame = ClientWire.encode(term: term.load(ordering: .relaxed), name: name, body: body)
        return try await branch.callRaw(action, body: frame, on: nil, timeout: timeout)
    }

    func close() async {
        closed.store(true, ordering: .relaxed)
        await branch.close()
    }
}
