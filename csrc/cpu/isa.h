// The CPU instruction-set choice of the ISA-dispatched kernels (reduce_cpu.cpp),
// exposed to Python by graphequi.cpp as graphequi._C.set_cpu_isa / cpu_isa.
#pragma once
#include <string>

namespace graphequi {

// 'auto' (widest the CPU supports), 'avx2' or 'baseline'; ValueError otherwise.
void set_cpu_isa(const std::string& isa);
// The current choice (initially GRAPHEQUI_CPU_ISA, or 'auto').
std::string cpu_isa();
// Whether the kernels run their AVX2 copy now (raises on an invalid choice).
bool cpu_isa_is_avx2();

}  // namespace graphequi
