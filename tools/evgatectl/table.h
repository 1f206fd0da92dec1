// Aligned text tables (kubectl style) and RFC 4180 CSV for evgatectl output.
#ifndef EVGATE_TOOLS_EVGATECTL_TABLE_H_
#define EVGATE_TOOLS_EVGATECTL_TABLE_H_

#include <ostream>
#include <string>
#include <vector>

namespace evgate::ctl {

// Thread-compatible.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }

  // Columns padded to the widest cell, separated by three spaces.
  void PrintText(std::ostream& out) const;
  // Header line then one line per row; fields quoted when needed.
  void PrintCsv(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Quotes a CSV field if it contains a comma, quote, CR or LF.
std::string CsvField(const std::string& field);

}  // namespace evgate::ctl

#endif  // EVGATE_TOOLS_EVGATECTL_TABLE_H_
