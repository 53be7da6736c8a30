# Shows which pipe end keeps the connection open: `gdb -p <workerd pid> -batch -x trace.gdb`, then run
# one `measure.mjs undici:hib:plain:0` trial. The workerd binary is not stripped. Expected (no frame
# sent by the client): BlockedReceive::tryPumpFrom continues with WebSocketPipeImpl::tryPumpFrom right
# after the client's Close; dropHibernatableWebSocket runs at once; BlockedPumpFrom::abort only ~10 s
# later, from ~WebSocketPipeEnd <- LegacyWebSocketAdapter::Accepted::~Accepted <- OwnedObjectList
# (the object's IoContext being torn down when the idle object is evicted).
set pagination off
set print thread-events off
set confirm off
set breakpoint pending off
break 'kj::(anonymous namespace)::WebSocketPipeImpl::BlockedReceive::tryPumpFrom(kj::WebSocket&)'
break 'kj::(anonymous namespace)::WebSocketPipeImpl::tryPumpFrom(kj::WebSocket&)'
break 'kj::(anonymous namespace)::WebSocketPipeImpl::BlockedPumpFrom::abort()'
break 'workerd::LegacyHibernationManagerImpl::dropHibernatableWebSocket(workerd::LegacyHibernationManagerImpl::HibernatableWebSocket&)'
commands 1-4
silent
shell date +%T.%N
bt 8
continue
end
continue
