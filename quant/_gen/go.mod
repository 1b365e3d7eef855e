module github.com/ocelot-llm/ocelot/quant/_gen

go 1.26
