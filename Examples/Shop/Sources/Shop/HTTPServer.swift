import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Octopus
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Hummingbird's HTTP/1 channel and a router, served on a listening socket this process was handed (every worker
/// accepts on the same one; the master keeps it open while workers come and go). `Application` binds a socket of its
/// own, so this serves the router the way it does, on the inherited socket.
///
/// Connections are accepted by a thread of this worker (poll, then accept: when another worker took the connection
/// first, accept says so and the thread waits again) and handed to NIO one by one. NIO's own `ServerSocketChannel`
/// cannot share a listening socket with other processes in a debug build: it asserts that a wake-up always yields a
/// connection (swift-nio#3500).
///
/// A graceful stop stops accepting (the other workers go on; the shared socket is never shut down), lets the
/// connections being served finish for up to `drainTimeout`, then closes what is left.
struct HTTPServer: Service {
    let socket: Int32
    let responder: RouterResponder<BasicRequestContext>
    let logger: Logger
    var drainTimeout: Duration = .seconds(10)

    init(socket: Int32, router: Router<BasicRequestContext>, logger: Logger) {
        self.socket = socket
        self.responder = router.buildResponder()
        self.logger = logger
    }

    func run() async throws {
        let responder = self.responder
        let logger = self.logger
        let http = HTTP1Channel(responder: { request, writer, channel in
            let context = BasicRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: logger))
            let response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch let error as any HTTPResponseError {
                response = (try? error.response(from: request, context: context)) ?? Response(status: error.status)
            } catch {
                response = Response(status: .internalServerError)
            }
            try await writer.write(response: response.head, body: response.body)
        })
        let acceptor = Acceptor(socket: socket)
        let connections = acceptor.start()
        logger.info("serving HTTP on the cluster's listening socket")
        let serving = Task {
            await withDiscardingTaskGroup { group in
                for await connection in connections {
                    group.addTask {
                        do {
                            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                                .channelOption(.allowRemoteHalfClosure, value: true)
                                .withConnectedSocket(connection) { channel in http.setup(channel: channel, logger: logger) }
                            await http.handle(value: channel, logger: logger)
                        } catch {
                            logger.warning("a connection could not be served: \(error)")
                        }
                    }
                }
            }
        }
        try? await gracefulShutdown()
        acceptor.stop()
        let drained = Task {
            try? await Task.sleep(for: drainTimeout)
            serving.cancel()
        }
        await serving.value
        drained.cancel()
        close(socket)
    }
}

/// Accepts on a shared listening socket from a thread of its own.
final class Acceptor: Sendable {
    let socket: Int32
    private let stopping = Atomic<Bool>(false)

    init(socket: Int32) {
        self.socket = socket
    }

    /// The accepted connections, until ``stop()``.
    func start() -> AsyncStream<Int32> {
        let (connections, accepted) = AsyncStream.makeStream(of: Int32.self)
        let thread = Thread { [self] in
            while !stopping.load(ordering: .relaxed) {
                var ready = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 100) > 0 else { continue }
                let connection = accept(socket, nil, nil)
                guard connection >= 0 else { continue }  // another worker took it, or a signal came
                _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                accepted.yield(connection)
            }
            accepted.finish()
        }
        thread.start()
        return connections
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
    }
}
