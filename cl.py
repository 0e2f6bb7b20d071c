import socket,time
t0=time.time()
s=socket.create_connection(("127.0.0.1",16667)); s.sendall(b"NICK tst\r\nUSER tst 0 * :x\r\n")
s.settimeout(15); buf=b""
while b" 422 " not in buf and b" 376 " not in buf:
    d=s.recv(4096)
    if not d: break
    buf+=d
print(time.time()-t0); print(buf.decode())
s.sendall(b"WHOIS tst\r\n"); time.sleep(0.5); print(s.recv(4096).decode())
