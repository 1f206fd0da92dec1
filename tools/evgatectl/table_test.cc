#include "tools/evgatectl/table.h"

#include <sstream>

#include "gtest/gtest.h"

namespace evgate::ctl {
namespace {

TEST(TableTest, ColumnsAlignToTheWidestCell) {
  Table table({"EVSE", "STATE"});
  table.AddRow({"wallbox-12", "CHARGING"});
  table.AddRow({"dc1", "AVAILABLE"});
  std::ostringstream out;
  table.PrintText(out);
  EXPECT_EQ(out.str(),
            "EVSE         STATE\n"
            "wallbox-12   CHARGING\n"
            "dc1          AVAILABLE\n");
}

TEST(TableTest, CsvQuotesOnlyWhenNeeded) {
  Table table({"id", "description"});
  table.AddRow({"s1", "Over-current, \"L2\""});
  table.AddRow({"s2", "plain"});
  std::ostringstream out;
  table.PrintCsv(out);
  EXPECT_EQ(out.str(),
            "id,description\r\n"
            "s1,\"Over-current, \"\"L2\"\"\"\r\n"
            "s2,plain\r\n");
}

}  // namespace
}  // namespace evgate::ctl
