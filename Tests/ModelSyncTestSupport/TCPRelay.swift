import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A byte-for-byte TCP relay on loopback in front of a server, for streams that a buffering proxy
/// (``ForwardingProxy``) cannot carry: answers pass through as they are written. A scripted fault
/// cuts a connection after a given number of answer bytes, possibly in the middle of an event, as
/// a network that fails at any point would.
public final class TCPRelay: Sendable {
    /// The relay's URL: send requests here instead of the server's.
    public let baseURL: URL
    private let targetPort: Int
    private let listener: Int32
    private let state = Mutex(State())

    private struct State {
        var stopped = false
        var open: [Int32] = []
        /// Cut the next connection after this many bytes from the server.
        var cutAfter: Int?
        var cuts = 0
    }

    /// A relay forwarding every connection to `127.0.0.1:targetPort`.
    public init(targetPort: Int) throws {
        self.targetPort = targetPort
        #if os(Linux)
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let listener = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard listener >= 0 else { throw TestSupportFailure("socket failed") }
        var reuse: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw TestSupportFailure("bind/listen failed")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        baseURL = URL(string: "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))")!
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Cuts the next connection (both directions) once `bytes` bytes of the server's answer went through.
    public func cutNextConnection(afterResponseBytes bytes: Int) {
        state.withLock { $0.cutAfter = bytes }
    }

    /// Closes every open connection now.
    public func cutAll() {
        let sockets = state.withLock { $0.open }
        for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    /// How many connections a scripted cut closed.
    public var cutCount: Int { state.withLock { $0.cuts } }

    /// Stops accepting and closes every connection.
    public func stop() {
        let wasStopped = state.withLock { state in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !wasStopped else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        cutAll()
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !state.withLock({ $0.stopped }) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            #if os(Linux)
                let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #else
                let upstream = socket(AF_INET, SOCK_STREAM, 0)
            #endif
            var address = Self.loopback(port: targetPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(upstream)
                close(client)
                continue
            }
            let cutAfter = state.withLock { state -> Int? in
                state.open += [client, upstream]
                defer { state.cutAfter = nil }
                return state.cutAfter
            }
            let finished = Mutex(0)
            let closeBoth: @Sendable () -> Void = { [self] in
                let last = finished.withLock { count -> Bool in
                    count += 1
                    return count == 2
                }
                shutdown(client, Int32(SHUT_RDWR))
                shutdown(upstream, Int32(SHUT_RDWR))
                guard last else { return }
                state.withLock { $0.open.removeAll { $0 == client || $0 == upstream } }
                close(client)
                close(upstream)
            }
            Thread { [self] in
                pump(from: client, to: upstream, cutAfter: nil)
                closeBoth()
            }.start()
            Thread { [self] in
                pump(from: upstream, to: client, cutAfter: cutAfter)
                closeBoth()
            }.start()
        }
    }

    private func pump(from source: Int32, to destination: Int32, cutAfter: Int?) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var forwarded = 0
        while true {
            var wanted = buffer.count
            if let cutAfter { wanted = min(wanted, cutAfter - forwarded) }
            if wanted <= 0 {
                state.withLock { $0.cuts += 1 }
                return
            }
            let count = recv(source, &buffer, wanted, 0)
            guard count > 0 else { return }
            var offset = 0
            while offset < count {
                #if os(Linux)
                    let written = buffer.withUnsafeBytes {
                        send(destination, $0.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL))
                    }
                #else
                    let written = buffer.withUnsafeBytes {
                        send(destination, $0.baseAddress! + offset, count - offset, 0)
                    }
                #endif
                if written <= 0 { return }
                offset += written
            }
            forwarded += count
        }
    }
}

/// A failure of a test support helper.
public struct TestSupportFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
