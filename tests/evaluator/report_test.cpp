// Report writers: JSON content, HTML with inline SVG charts and escaping, atomic writes.
#include "conflux/core/error.h"
#include "conflux/evaluator/report.h"
#include "reference_data.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace conflux::evaluator {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Report sample_report() {
  test::TokenData d;
  Report rep;
  rep.meta = {{"checkpoint", "ckpt<1>"}, {"workers", 2}};
  Batch b = d.batch(0, d.rows);
  b.targets = test::reference().at("tokens").at("true_targets").get<std::vector<int64_t>>();
  for (int64_t i = 0; i < d.rows; ++i) b.groups.push_back(i % 2 ? "g&1" : "g2");
  for (const auto& [name, opts] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"perplexity", {}}, {"ece", {}}, {"calibration", {}},
           {"fairness", {{"metric", "perplexity"}}}}) {
    auto m = make_metric(name, opts);
    rep.results.push_back(m->finalize(m->partial(b)));
  }
  Batch drift;
  drift.reference_features["len"] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  drift.features["len"] = {5, 6, 7, 8, 9, 10, 11, 12};
  auto m = make_metric("drift");
  rep.results.push_back(m->finalize(m->partial(drift)));
  return rep;
}

TEST(Report, WritesJsonAndHtmlAtomically) {
  char tmpl[] = "/tmp/conflux_report_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const Report rep = sample_report();
  const auto paths = write_report(rep, dir + "/out");
  ASSERT_EQ(paths.size(), 2u);
  const auto j = nlohmann::json::parse(slurp(paths[0]));
  EXPECT_EQ(j.at("format"), "conflux.eval.report/1");
  EXPECT_EQ(j.at("results").size(), 5u);
  EXPECT_EQ(j.at("results")[0].at("metric"), "perplexity");
  EXPECT_EQ(j.at("meta").at("workers"), 2);
  const std::string html = slurp(paths[1]);
  EXPECT_NE(html.find("Reliability before temperature scaling"), std::string::npos);
  EXPECT_NE(html.find("PSI per feature"), std::string::npos);
  EXPECT_NE(html.find("Per-group perplexity"), std::string::npos);
  EXPECT_GE(std::count(html.begin(), html.end(), '<') - 0, 50);
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_EQ(svgs, 5u);  // ece, calibration x2, fairness, drift
  EXPECT_NE(html.find("ckpt&lt;1&gt;"), std::string::npos);  // escaped
  EXPECT_NE(html.find("g&amp;1"), std::string::npos);
  EXPECT_EQ(html.find("ckpt<1>"), std::string::npos);
  // no temp files left behind
  DIR* dh = opendir((dir + "/out").c_str());
  ASSERT_NE(dh, nullptr);
  int entries = 0;
  while (auto* e = readdir(dh)) {
    const std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    EXPECT_TRUE(n == "report.json" || n == "report.html") << n;
    ++entries;
  }
  closedir(dh);
  EXPECT_EQ(entries, 2);
  // Overwriting replaces the file whole.
  conflux::write_file_atomic(paths[0], "{}\n");
  EXPECT_EQ(slurp(paths[0]), "{}\n");
  EXPECT_THROW(conflux::write_file_atomic(dir + "/missing/dir/x.json", "x"), IoError);
  std::remove(paths[0].c_str());
  std::remove(paths[1].c_str());
  rmdir((dir + "/out").c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace conflux::evaluator
