import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where a master listens and a branch connects.
public enum RPCAddress: Sendable, Hashable, CustomStringConvertible {
    /// A Unix domain socket (the path is replaced at bind when a stale socket file is there).
    case unix(String)
    /// TCP; port 0 binds any free port (`RPCMaster.listen` returns the bound one).
    case tcp(host: String, port: Int)
    /// Memory in this process, by name: the same frames and code paths, no sockets (tests, embedding).
    case inProcess(String)

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): "tcp:\(host):\(port)"
        case .inProcess(let name): "in-process:\(name)"
        }
    }
}

/// A bound listening endpoint.
final class Listener: Sendable {
    let address: RPCAddress
    private let stop: @Sendable () async -> Void

    init(address: RPCAddress, stop: @escaping @Sendable () async -> Void) {
        self.address = address
        self.stop = stop
    }

    func close() async { await stop() }
}

enum Transport {
    static let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    /// Listens on `eventLoop`, which every accepted connection runs on; each one's link goes to `accept` (there).
    static func listen(
        _ address: RPCAddress, maxFrameSize: Int, on eventLoop: any EventLoop,
        accept: @escaping @Sendable (any FrameLink) -> Void
    ) async throws -> Listener {
        switch address {
        case .inProcess(let name):
            try InProcessRegistry.register(name, maxFrameSize: maxFrameSize, accept: accept)
            return Listener(address: address) { InProcessRegistry.unregister(name) }
        case .unix(let path):
            let server = try await bootstrap(maxFrameSize: maxFrameSize, on: eventLoop, accept: accept)
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            return Listener(address: address) {
                try? await server.close()
                unlink(path)
            }
        case .tcp(let host, let port):
            let server = try await bootstrap(maxFrameSize: maxFrameSize, on: eventLoop, accept: accept)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: port).get()
            let bound = server.localAddress?.port ?? port
            return Listener(address: .tcp(host: host, port: bound)) { try? await server.close() }
        }
    }

    /// Accepted connections get their handlers and are handed over on their event loop, so that accepting never
    /// waits for the Swift concurrency pool (an application that keeps it busy still gets its connections bound).
    private static func bootstrap(
        maxFrameSize: Int, on eventLoop: any EventLoop, accept: @escaping @Sendable (any FrameLink) -> Void
    ) -> ServerBootstrap {
        ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    _ = try NIOFrameLink.install(on: channel, maxFrameSize: maxFrameSize, onActive: accept)
                }
            }
    }

    /// Takes over a connected stream socket this process holds (an end of a socketpair, an inherited descriptor):
    /// NIO owns and closes it from then on.
    static func adopt(_ descriptor: Int32, maxFrameSize: Int, on eventLoop: any EventLoop) async throws -> any FrameLink {
        try await ClientBootstrap(group: eventLoop).withConnectedSocket(descriptor) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOFrameLink.install(on: channel, maxFrameSize: maxFrameSize) }
        }
    }

    /// Connects on `eventLoop` (a branch keeps all its connections on one loop, see `RPCBranch.executor`).
    static func connect(_ address: RPCAddress, maxFrameSize: Int, on eventLoop: any EventLoop) async throws
        -> any FrameLink
    {
        switch address {
        case .inProcess(let name):
            return try InProcessRegistry.connect(name, on: eventLoop)
        case .unix(let path):
            return try await ClientBootstrap(group: eventLoop).connect(unixDomainSocketPath: path) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOFrameLink.install(on: channel, maxFrameSize: maxFrameSize) }
            }
        case .tcp(let host, let port):
            return try await ClientBootstrap(group: eventLoop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOFrameLink.install(on: channel, maxFrameSize: maxFrameSize)
                    }
                }
        }
    }
}

/// In-process listeners by name.
enum InProcessRegistry {
    private struct Entry {
        var maxFrameSize: Int
        var accept: @Sendable (any FrameLink) -> Void
    }
    private static let listeners = Mutex<[String: Entry]>([:])

    static func register(_ name: String, maxFrameSize: Int, accept: @escaping @Sendable (any FrameLink) -> Void) throws {
        try listeners.withLock { table in
            guard table[name] == nil else {
                throw RPCError(.closed, "in-process address \"\(name)\" is already listened on")
            }
            table[name] = Entry(maxFrameSize: maxFrameSize, accept: accept)
        }
    }

    static func unregister(_ name: String) {
        listeners.withLock { _ = $0.removeValue(forKey: name) }
    }

    static func connect(_ name: String, on eventLoop: any EventLoop) throws -> InProcessLink {
        guard let entry = listeners.withLock({ $0[name] }) else {
            throw RPCError(.notConnected, "nothing listens on in-process address \"\(name)\"")
        }
        let (server, client) = InProcessLink.pair(name: name, maxFrameSize: entry.maxFrameSize, on: eventLoop)
        entry.accept(server)
        return client
    }
}
