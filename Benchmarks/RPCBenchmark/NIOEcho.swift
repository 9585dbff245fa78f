// The NIO floor: 64-byte messages echoed over a Unix socket by bare NIO channel handlers on one event loop each
// side (no framing, no calls, no Swift tasks), in the C ping-pong peer's output format. It shows how much of the
// distance between Octopus and the C floor is NIO's own (epoll, a non-blocking read and write, the pipeline).
//   RPCBenchmark echo-serve PATH          until stdin closes
//   RPCBenchmark echo-client PATH ROUNDS
import Foundation
import NIOCore
import NIOPosix

private final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// Sends 64 bytes, waits for all 64 back, repeats; records each round trip.
private final class PingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static let size = 64

    private let rounds: Int
    private let done: EventLoopPromise<[UInt64]>
    private var received = 0
    private var sentAt: UInt64 = 0
    private var latencies: [UInt64] = []

    init(rounds: Int, done: EventLoopPromise<[UInt64]>) {
        self.rounds = rounds
        self.done = done
        latencies.reserveCapacity(rounds)
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
    }

    private func send(_ context: ChannelHandlerContext) {
        var message = context.channel.allocator.buffer(capacity: Self.size)
        message.writeRepeatingByte(UInt8(ascii: "x"), count: Self.size)
        sentAt = DispatchTime.now().uptimeNanoseconds
        context.writeAndFlush(wrapOutboundOut(message), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        guard received >= Self.size else { return }
        received -= Self.size
        latencies.append(DispatchTime.now().uptimeNanoseconds - sentAt)
        if latencies.count == rounds {
            done.succeed(latencies)
        } else {
            send(context)
        }
    }
}

enum NIOEcho {
    static func serve(_ path: String) throws {
        let server = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        while FileHandle.standardInput.availableData.count > 0 {}
        try server.close().wait()
    }

    /// Returns the latencies of `rounds` round trips after 2,000 of warm-up, and the seconds they took.
    static func client(_ path: String, rounds: Int) throws -> (latencies: [UInt64], seconds: Double) {
        func run(_ rounds: Int) throws -> ([UInt64], Double) {
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let done = loop.makePromise(of: [UInt64].self)
            let started = DispatchTime.now().uptimeNanoseconds
            let channel = try ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(PingHandler(rounds: rounds, done: done))
                    }
                }
                .connect(unixDomainSocketPath: path).wait()
            let latencies = try done.futureResult.wait()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            try channel.close().wait()
            return (latencies, seconds)
        }
        _ = try run(2000)
        return try run(rounds)
    }
}
