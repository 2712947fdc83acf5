// The callback sender's thread against a local cpp-httplib receiver: delivery with the headers,
// a retry that keeps the delivery id, a loopback receiver refused by the default address rules,
// and a stop() mid-transfer that gives the claim back. Also runs under ThreadSanitizer.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/callbacks/callback_store.h"
#include "common/job_outcomes.h"
#include "consumer/callbacks/callback_sender.h"
#include "producer/batch_intake.h"
#include "tests/support/temp_db.h"

namespace feedpipe {
namespace {

using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& condition) { return testing::wait_until(condition, 20s); }

class CallbackSenderTest : public testing::MigratedDbTest {
 protected:
  void SetUp() override {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      if (hold_) {
        while (hold_) std::this_thread::sleep_for(10ms);
      }
      std::lock_guard lock(mu_);
      deliveries_.push_back(req.get_header_value("Feedpipe-Delivery"));
      signatures_.push_back(req.get_header_value("Feedpipe-Signature"));
      content_types_.push_back(req.get_header_value("Content-Type"));
      res.status = failures_ > 0 ? 500 : 204;
      if (failures_ > 0) --failures_;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    server_thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    hold_ = false;
    server_.stop();
    server_thread_.join();
  }

  callbacks::CallbackSettings settings(bool allow_private = true) {
    callbacks::CallbackSettings s;
    s.db_path = path_;
    s.secret = "s3cret";
    s.retry = {50ms, 100ms, 1h};
    s.poll_interval = 20ms;
    s.timeout_ms = 5000;
    s.claim_lease = 10s;
    s.allow_private_networks = allow_private;
    return s;
  }

  // A completed batch that asked for a callback to `url`.
  std::string completed_batch(const std::string& url) {
    producer::BatchRequest request{{"not a url"}, url};
    return std::get<producer::CreatedBatch>(producer::create_batch(*db_, request, "", "")).batch_id;
  }

  std::string column(const std::string& sql, const std::string& batch) {
    auto q = db_->prepare(sql);
    q.bind(1, batch);
    return q.step() ? q.text(0) : "";
  }
  std::string hook() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

  httplib::Server server_;
  std::thread server_thread_;
  int port_ = 0;
  std::mutex mu_;
  int failures_ = 0;
  std::atomic<bool> hold_{false};
  std::vector<std::string> deliveries_, signatures_, content_types_;
};

TEST_F(CallbackSenderTest, DeliversWithItsHeadersAndRetriesWithTheSameDeliveryId) {
  {
    std::lock_guard lock(mu_);
    failures_ = 2;
  }
  const std::string batch = completed_batch(hook());
  callbacks::CallbackSender sender(settings());
  sender.start();
  ASSERT_TRUE(eventually([&] { return column("SELECT status FROM callbacks WHERE batch_id = ?", batch) == "delivered"; }));
  sender.stop();
  std::lock_guard lock(mu_);
  ASSERT_EQ(deliveries_.size(), 3u);
  EXPECT_EQ(deliveries_[0], column("SELECT delivery_id FROM callbacks WHERE batch_id = ?", batch));
  EXPECT_EQ(deliveries_[1], deliveries_[0]);
  EXPECT_EQ(deliveries_[2], deliveries_[0]);
  EXPECT_EQ(content_types_[0], "application/json");
  EXPECT_EQ(signatures_[0].rfind("t=", 0), 0u);
  EXPECT_NE(signatures_[0].find(",v1="), std::string::npos);
  EXPECT_EQ(column("SELECT attempts FROM callbacks WHERE batch_id = ?", batch), "3");
}

TEST_F(CallbackSenderTest, ALoopbackReceiverIsRefusedByTheDefaultAddressRules) {
  const std::string batch = completed_batch(hook());
  callbacks::CallbackSender sender(settings(false));
  sender.start();
  ASSERT_TRUE(eventually([&] { return column("SELECT status FROM callbacks WHERE batch_id = ?", batch) == "failed"; }));
  sender.stop();
  EXPECT_NE(column("SELECT last_error FROM callbacks WHERE batch_id = ?", batch).find("refused address 127.0.0.1 (loopback)"),
            std::string::npos);
  std::lock_guard lock(mu_);
  EXPECT_TRUE(deliveries_.empty());
}

TEST_F(CallbackSenderTest, StopMidTransferGivesTheClaimBackWithoutCountingAnAttempt) {
  hold_ = true;
  const std::string batch = completed_batch(hook());
  auto s = settings();
  s.timeout_ms = 60000;  // the transfer would hold stop() this long if stop() waited for it
  s.claim_lease = 120s;
  callbacks::CallbackSender sender(s);
  sender.start();
  ASSERT_TRUE(eventually([&] { return !column("SELECT claimed_by FROM callbacks WHERE batch_id = ?", batch).empty(); }));
  auto started = std::chrono::steady_clock::now();
  sender.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);  // not the attempt's timeout
  hold_ = false;
  EXPECT_EQ(column("SELECT status FROM callbacks WHERE batch_id = ?", batch), "pending");
  EXPECT_EQ(column("SELECT attempts FROM callbacks WHERE batch_id = ?", batch), "0");
  EXPECT_EQ(column("SELECT claimed_until_ms FROM callbacks WHERE batch_id = ?", batch), "0");
}

}  // namespace
}  // namespace feedpipe
