// ZAP (ZeroMQ RFC 27) handler thread admitting allow-listed CURVE public keys.
#include <conflux/protocol/zap.h>

#include <conflux/core/log.h>

#include <zmq.h>

namespace conflux::protocol {

ZapHandler::ZapHandler(zmq::context_t& context, std::shared_ptr<const AllowList> allow,
                       std::string domain)
    : socket_(context, zmq::socket_type::rep), allow_(std::move(allow)), domain_(std::move(domain)) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");  // bound before any server socket can handshake
  thread_ = std::thread([this] { loop(); });
}

ZapHandler::~ZapHandler() { stop(); }

void ZapHandler::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::loop() {
  while (!stop_.load()) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) == 0) continue;
      std::vector<zmq::message_t> req;
      zmq::message_t part;
      do {
        if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
        req.push_back(std::move(part));
      } while (socket_.get(zmq::sockopt::rcvmore) && req.size() < 16);
      std::string version = req.size() > 0 ? req[0].to_string() : "";
      std::string request_id = req.size() > 1 ? req[1].to_string() : "";
      std::string domain = req.size() > 2 ? req[2].to_string() : "";
      std::string address = req.size() > 3 ? req[3].to_string() : "";
      std::string mechanism = req.size() > 5 ? req[5].to_string() : "";
      std::string status = "400", text, user_id;
      if (version != "1.0" || req.size() < 6) {
        text = "malformed ZAP request";
      } else if (domain != domain_) {
        text = "wrong ZAP domain";
      } else if (mechanism != "CURVE" || req.size() < 7 || req[6].size() != 32) {
        text = "only CURVE is accepted";
      } else {
        char z85[41];
        zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
        if (auto id = allow_->identity_for(z85)) {
          status = "200";
          text = "OK";
          user_id = *id;
        } else {
          text = "key not in the allow-list";
          log::warn("protocol: rejected CURVE key {} from {} (not in the allow-list)", z85, address);
        }
      }
      (status == "200" ? accepted_ : rejected_).fetch_add(1);
      socket_.send(zmq::buffer(version), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
      socket_.send(zmq::str_buffer(""), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      if (e.num() == EINTR) continue;
      log::error("protocol: ZAP handler: {}", e.what());
    }
  }
  socket_.close();
}

}  // namespace conflux::protocol
