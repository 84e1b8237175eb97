; Definitions infill cuts Python files along and lists in its symbol table.
; Capture names: @definition.<kind> on the whole node, @name on its name.
; A function nested in a class is reported as a method by the code.

(function_definition
  name: (identifier) @name) @definition.function

(class_definition
  name: (identifier) @name) @definition.class

; Module and class level constants and attributes: `NAME = value`, `x: int = 0`.
(module
  (expression_statement
    (assignment
      left: (identifier) @name) @definition.field))

(class_definition
  body: (block
    (expression_statement
      (assignment
        left: (identifier) @name) @definition.field)))
